package mask

import (
	"context"
	"time"

	"github.com/pion/rtp"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/media"
)

// RTPWriter takes the packets of the agents' stream
// (*webrtc.TrackLocalStaticRTP).
type RTPWriter interface {
	WriteRTP(p *rtp.Packet) error
}

// Encoder is the agents' role encoder: the same as the customers' but it
// takes only Frames made by Apply.
type Encoder struct {
	enc *media.RoleEncoder
}

// NewEncoder returns the agents' encoder writing to out.
func NewEncoder(cfg media.RoleEncoderConfig, out RTPWriter, log *zap.Logger) *Encoder {
	return &Encoder{enc: media.NewRoleEncoder(cfg, out, log)}
}

// Offer hands a masked picture to the encoder (see media.RoleEncoder.Offer);
// the caller still releases f.
func (e *Encoder) Offer(f Frame) {
	if f.f != nil {
		e.enc.Offer(f.f)
	}
}

// RequestKeyFrame, SetViewers, Stats and Run are media.RoleEncoder's. When
// no new Frame comes, the encoder repeats the last one it got: the last safe
// picture.
func (e *Encoder) RequestKeyFrame()                    { e.enc.RequestKeyFrame() }
func (e *Encoder) SetViewers(n int)                    { e.enc.SetViewers(n) }
func (e *Encoder) Prepare(w, h int)                    { e.enc.Prepare(w, h) }
func (e *Encoder) ReportLoss(f float64, now time.Time) { e.enc.ReportLoss(f, now) }
func (e *Encoder) Stats() media.RoleStats              { return e.enc.Stats() }
func (e *Encoder) Run(ctx context.Context) error       { return e.enc.Run(ctx) }
