package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"github.com/tandem-cobrowse/tandem/pkg/protocol"
	"github.com/tandem-cobrowse/tandem/pkg/rtc"
	"github.com/tandem-cobrowse/tandem/signaling"
)

// The session implements signaling.Peers for its viewers.
var _ signaling.Peers = (*session)(nil)

// Join records a viewer that opened its signaling socket.
func (s *session) Join(_ context.Context, v signaling.Viewer) error {
	if _, ok := s.enc[v.Role]; !ok {
		return fmt.Errorf("%w: %q", ErrUnknownRole, v.Role)
	}
	s.mu.Lock()
	if _, ok := s.viewers[v.ID]; !ok {
		s.viewers[v.ID] = &viewer{v: v}
	}
	s.mu.Unlock()
	s.log.Info("viewer joined", zap.String("viewer_id", v.ID), zap.String("role", v.Role))
	s.publishViewer(EventViewerJoined, v)
	return nil
}

// publishViewer tells the gateways (and through them the audit trail) that
// a viewer joined or left.
func (s *session) publishViewer(typ string, v signaling.Viewer) {
	s.w.publishEvent(Event{Type: typ, Company: s.req.Company, SessionID: s.req.SessionID,
		ViewerID: v.ID, Role: v.Role, Name: v.Name})
}

// Offer answers a viewer's offer with a new peer connection that carries the
// viewer's role's track. A second offer from the same viewer replaces its
// peer, unless it restarts ICE (o.Restart): that one renegotiates the
// viewer's peer, which keeps its channels, track and encoder.
func (s *session) Offer(ctx context.Context, v signaling.Viewer, o signaling.Offer) (string, error) {
	enc, ok := s.enc[v.Role]
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrUnknownRole, v.Role)
	}
	if o.Restart {
		return s.restart(ctx, v, o.SDP)
	}
	sdp := o.SDP
	var onFile func([]byte, bool)
	var onScreenRTP func(*rtp.Packet)
	var screen webrtc.TrackLocal
	var onScreenKey func()
	if v.Role == RoleCustomer {
		onFile = func(b []byte, binary bool) { s.onFile(v, b, binary) }
		onScreenRTP = func(p *rtp.Packet) { s.onScreenRTP(v.ID, p) }
	} else {
		// Only agents' peers carry the shared screen (screenshare.go).
		screen, onScreenKey = s.screenTrack, s.screenKeyFrame
	}
	var peer *rtc.Peer
	peer, err := s.w.rtc.NewPeer(rtc.PeerConfig{
		ViewerID:   v.ID,
		Role:       v.Role,
		Track:      s.track[v.Role],
		OnInput:    func(b []byte) { s.onInput(v, b) },
		OnFile:     onFile,
		OnKeyFrame: enc.RequestKeyFrame,
		// The role's bitrate follows its worst viewer's loss.
		OnLoss: func(f float64) { enc.ReportLoss(f, time.Now()) },
		// The customer's screen, relayed to agents (screenshare.go).
		ScreenTrack:      screen,
		OnScreenKeyFrame: onScreenKey,
		OnScreenRTP:      onScreenRTP,
		OnCandidate: func(c protocol.Candidate) {
			if err := s.host.Send(v.ID, protocol.Signal{Type: protocol.TypeCandidate, Candidate: &c}); err != nil {
				s.log.Debug("send candidate", zap.Error(err))
			}
		},
		OnState: func(st webrtc.PeerConnectionState) {
			if st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed {
				// Not on pion's goroutine: closing waits for it.
				go s.dropPeer(v.ID, peer)
			}
		},
	})
	if err != nil {
		return "", fmt.Errorf("peer for viewer %s: %w", v.ID, err)
	}
	answer, err := peer.Answer(ctx, sdp)
	if err != nil {
		_ = peer.Close()
		return "", fmt.Errorf("answer viewer %s: %w", v.ID, err)
	}
	s.mu.Lock()
	vw := s.viewers[v.ID]
	if vw == nil {
		vw = &viewer{v: v}
		s.viewers[v.ID] = vw
	}
	old := vw.peer
	vw.peer = peer
	s.mu.Unlock()
	if old != nil {
		_ = old.Close()
		if v.Role == RoleCustomer {
			// The new connection shares nothing until its page starts again.
			s.screenPeerReplaced(v.ID)
		}
	}
	s.mask.forget(v.ID) // the new peer is told the mask state afresh
	s.viewersChanged()
	return answer, nil
}

// restart applies an ICE-restart offer to the viewer's existing peer. pion
// restarts its ICE agent when the offer's credentials change; DTLS, SCTP and
// the track's sender stay, and the peer asks for a key frame when it is
// connected again. A viewer without a peer gets ErrNoPeer: its restart offer
// belongs to a connection the worker no longer has, so it must start anew.
func (s *session) restart(ctx context.Context, v signaling.Viewer, sdp string) (string, error) {
	s.mu.Lock()
	var peer *rtc.Peer
	if vw := s.viewers[v.ID]; vw != nil {
		peer = vw.peer
	}
	s.mu.Unlock()
	if peer == nil {
		return "", fmt.Errorf("restart viewer %s: %w", v.ID, ErrNoPeer)
	}
	answer, err := peer.Answer(ctx, sdp)
	if err != nil {
		return "", fmt.Errorf("restart viewer %s: %w", v.ID, err)
	}
	s.log.Info("viewer restarted ICE", zap.String("viewer_id", v.ID), zap.String("role", v.Role))
	return answer, nil
}

// Candidate adds a viewer's trickled ICE candidate to its peer.
func (s *session) Candidate(v signaling.Viewer, c protocol.Candidate) error {
	s.mu.Lock()
	vw := s.viewers[v.ID]
	s.mu.Unlock()
	if vw == nil || vw.peer == nil {
		return fmt.Errorf("candidate before offer from viewer %s", v.ID)
	}
	return vw.peer.AddCandidate(c)
}

// Leave forgets a viewer and closes its peer.
func (s *session) Leave(v signaling.Viewer) {
	s.mu.Lock()
	vw := s.viewers[v.ID]
	delete(s.viewers, v.ID)
	s.mu.Unlock()
	if vw != nil && vw.peer != nil {
		_ = vw.peer.Close()
	}
	s.log.Info("viewer left", zap.String("viewer_id", v.ID), zap.String("role", v.Role))
	s.viewerGone(v.ID)
	s.publishViewer(EventViewerLeft, v)
	s.viewersChanged()
}

// dropPeer closes a viewer's peer that failed, unless it was replaced already.
func (s *session) dropPeer(id string, p *rtc.Peer) {
	s.mu.Lock()
	vw := s.viewers[id]
	mine := vw != nil && vw.peer == p
	if mine {
		vw.peer = nil
	}
	s.mu.Unlock()
	if mine {
		_ = p.Close()
		s.viewerGone(id) // an agent whose connection failed does not keep control
		s.viewersChanged()
	}
}

// viewersChanged recounts the viewers with a peer, tells the encoders, and
// publishes the counts.
func (s *session) viewersChanged() {
	counts := map[string]int{}
	s.mu.Lock()
	for _, vw := range s.viewers {
		if vw.peer != nil {
			counts[vw.v.Role]++
		}
	}
	now := time.Now()
	if counts[RoleCustomer] > 0 {
		s.customerSeen = true
		s.customerGoneAt = time.Time{}
	} else if s.customerSeen && s.customerGoneAt.IsZero() {
		s.customerGoneAt = now
	}
	if counts[RoleCustomer]+counts[RoleAgent] > 0 {
		s.emptySince = time.Time{}
	} else if s.emptySince.IsZero() {
		s.emptySince = now
	}
	s.mu.Unlock()
	s.wakePause()
	for _, role := range roles {
		s.enc[role].SetViewers(counts[role])
	}
	s.w.publishEvent(Event{Type: "viewers", Company: s.req.Company, SessionID: s.req.SessionID,
		Customers: counts[RoleCustomer], Agents: counts[RoleAgent]})
}
