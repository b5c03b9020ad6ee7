// Package media owns Tandem's picture path from a screencast JPEG to the RTP
// packets of a role's video track: I420 frames and their pool, JPEG decoding
// with libjpeg-turbo, VP8 encoding (and decoding, for tests) with libvpx, and
// the role encoders that encode each picture once for all viewers of a role.
//
//	Capture.JPEG ─Decoder.Decode─▶ *Frame (pooled, ref-counted)
//	   ─RoleEncoder.Offer─▶ Run: VP8Encoder ─VP8 payloader, capture clock─▶ rtpWriter (a TrackLocalStaticRTP)
//
// # Lifecycle
//
// A Frame from FramePool.Get or Decoder.Decode holds one reference. Whoever
// keeps a Frame beyond a call Retains it and Releases it when done; the last
// Release returns the buffers to the pool. Frames are read-only once shared.
//
// Decoder, VP8Encoder and VP8Decoder hold C memory (libjpeg-turbo, libvpx)
// until their idempotent Close. A RoleEncoder works while its Run runs: Run
// starts no goroutine, and when its context ends it releases the frames it
// holds, closes its VP8 encoder and returns.
//
// # Concurrency
//
// FramePool, Frame.Retain and Frame.Release, and every RoleEncoder method are
// safe for concurrent use; Offer, RequestKeyFrame and SetViewers never block
// on encoding. Decoder, VP8Encoder and VP8Decoder are not: one goroutine
// each (the worker's capture loop owns the Decoder, a RoleEncoder's Run owns
// its VP8Encoder).
//
// # Timing
//
// Chromium sends frames only on damage, so a role's RTP timestamps come from
// each frame's capture time (Frame.Received), never from a fixed frame rate.
// While nothing changes, the last picture is encoded again every
// RoleEncoderConfig.IdleRepeat so that a late or lossy viewer converges.
//
// Pixel values are JFIF (full-range BT.601), as in the JPEGs, and go to VP8
// unchanged: rescaling to video range would cost a pass over every frame,
// and viewers that read them as video range only see slightly more contrast.
package media
