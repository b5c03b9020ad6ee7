package media

import (
	"sync"

	"go.uber.org/zap"
)

// EncoderPool keeps VP8 encoders of one size and setting started ahead,
// as the browser pool keeps browsers: starting a 720p encoder takes about
// 70 ms, 130–250 ms while Chromium loads the session's page, and a new
// session's first picture waited for it (docs/encoder.md). A RoleEncoder
// whose config names the pool takes one for a picture of that size, and
// the pool starts a replacement in the background. Encoders are never
// given back: one that has encoded carries its rate control and
// references. Safe for concurrent use.
type EncoderPool struct {
	cfg  EncoderConfig
	size int
	log  *zap.Logger

	mu      sync.Mutex
	ready   []*VP8Encoder // guarded by mu
	filling bool          // guarded by mu: the filler runs
	closed  bool          // guarded by mu
	taken   uint64        // guarded by mu
	wg      sync.WaitGroup
}

// EncoderPoolStats counts what an EncoderPool did.
type EncoderPoolStats struct {
	Ready int    // started and waiting
	Taken uint64 // handed out
}

// NewEncoderPool starts size encoders of cfg in the background and keeps
// that many ready. A nil log discards logs.
func NewEncoderPool(cfg EncoderConfig, size int, log *zap.Logger) (*EncoderPool, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	p := &EncoderPool{cfg: cfg, size: max(size, 1), log: log.Named("encoders")}
	p.mu.Lock()
	p.fillLocked()
	p.mu.Unlock()
	return p, nil
}

// Take returns a started encoder for w×h pictures at bitrate kbps, or nil
// when the pool has another size or setting or none is ready; the caller
// owns it and closes it.
func (p *EncoderPool) Take(w, h, kbps int) *VP8Encoder {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || w != p.cfg.Width || h != p.cfg.Height || kbps != p.cfg.BitrateKbps {
		return nil
	}
	if len(p.ready) == 0 {
		p.fillLocked()
		return nil
	}
	e := p.ready[len(p.ready)-1]
	p.ready = p.ready[:len(p.ready)-1]
	p.taken++
	p.fillLocked()
	return e
}

// fillLocked starts the filler unless it runs or the pool is full.
func (p *EncoderPool) fillLocked() {
	if p.filling || p.closed || len(p.ready) >= p.size {
		return
	}
	p.filling = true
	p.wg.Go(p.fill)
}

// fill starts encoders until the pool is full or closed.
func (p *EncoderPool) fill() {
	for {
		p.mu.Lock()
		if p.closed || len(p.ready) >= p.size {
			p.filling = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		e, err := NewVP8Encoder(p.cfg)
		p.mu.Lock()
		if err != nil {
			p.filling = false
			p.mu.Unlock()
			p.log.Warn("start a VP8 encoder ahead", zap.Error(err))
			return // the next Take tries again
		}
		if p.closed {
			p.mu.Unlock()
			e.Close()
			return
		}
		p.ready = append(p.ready, e)
		p.mu.Unlock()
	}
}

// Stats returns the pool's counters.
func (p *EncoderPool) Stats() EncoderPoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return EncoderPoolStats{Ready: len(p.ready), Taken: p.taken}
}

// Close frees the ready encoders and waits for the filler; Take returns
// nil afterwards.
func (p *EncoderPool) Close() {
	p.mu.Lock()
	p.closed = true
	ready := p.ready
	p.ready = nil
	p.mu.Unlock()
	for _, e := range ready {
		e.Close()
	}
	p.wg.Wait()
}
