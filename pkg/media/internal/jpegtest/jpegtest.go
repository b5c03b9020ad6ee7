// Package jpegtest writes JPEGs with libjpeg-turbo for the tests of pkg/media,
// in the chroma subsamplings Go's image/jpeg cannot produce (it writes only
// 4:2:0 colour and grayscale). It is not used outside tests.
package jpegtest

/*
#cgo pkg-config: libturbojpeg
#include <turbojpeg.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"unsafe"
)

// Subsampling is a TurboJPEG chroma subsampling.
type Subsampling int

// The subsamplings libjpeg-turbo 2.1 writes.
const (
	S444  Subsampling = C.TJSAMP_444
	S422  Subsampling = C.TJSAMP_422
	S420  Subsampling = C.TJSAMP_420
	SGray Subsampling = C.TJSAMP_GRAY
	S440  Subsampling = C.TJSAMP_440
	S411  Subsampling = C.TJSAMP_411
)

// String names s as in "4:2:2".
func (s Subsampling) String() string {
	switch s {
	case S444:
		return "4:4:4"
	case S422:
		return "4:2:2"
	case S420:
		return "4:2:0"
	case SGray:
		return "gray"
	case S440:
		return "4:4:0"
	case S411:
		return "4:1:1"
	}
	return fmt.Sprintf("Subsampling(%d)", int(s))
}

// Encode compresses img at the given subsampling and quality (1–100),
// progressive if asked.
func Encode(img image.Image, s Subsampling, quality int, progressive bool) ([]byte, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return nil, errors.New("jpegtest: empty image")
	}
	rgb := make([]byte, 3*w*h)
	for y := range h {
		for x := range w {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			i := 3 * (y*w + x)
			rgb[i], rgb[i+1], rgb[i+2] = byte(r>>8), byte(g>>8), byte(bl>>8)
		}
	}
	hdl := C.tjInitCompress()
	if hdl == nil {
		return nil, errors.New("jpegtest: tjInitCompress failed")
	}
	defer C.tjDestroy(hdl)
	flags := C.int(0)
	if progressive {
		flags |= C.TJFLAG_PROGRESSIVE
	}
	var out *C.uchar
	var size C.ulong
	if C.tjCompress2(hdl, (*C.uchar)(unsafe.Pointer(&rgb[0])), C.int(w), C.int(3*w), C.int(h), C.TJPF_RGB,
		&out, &size, C.int(s), C.int(quality), flags) != 0 {
		return nil, fmt.Errorf("jpegtest: compress: %s", C.GoString(C.tjGetErrorStr2(hdl)))
	}
	defer C.tjFree(out)
	return C.GoBytes(unsafe.Pointer(out), C.int(size)), nil
}
