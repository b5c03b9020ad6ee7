package browserpool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"go.uber.org/zap"
)

// World is a script the lease runs in an isolated world of every document
// of its tab, with a binding that exists only in that world. Page scripts
// share the DOM with it but can neither see nor change its globals, and
// cannot call the binding (pkg/mask's script uses it).
type World struct {
	Name    string // world name, as in Page.addScriptToEvaluateOnNewDocument
	Binding string // global function the script calls to report
	Source  string
}

// ErrNoWorld is returned by EvalWorld while the top document has no context
// of the world (between documents, or before the script ran).
var ErrNoWorld = errors.New("browserpool: no isolated world in the top document")

// WorldEvent is what a world said, in CDP order per frame: a new context
// (Context is its id, 0 when the document lost its context), or a binding
// call (Payload) from a context. Frame says whose: the top document's, or a
// cross-origin child frame's that runs in its own process (the lease attaches
// to those and runs the world there too). Calls from other contexts (such
// as same-process child frames) come too; compare Context.
type WorldEvent struct {
	Kind     WorldEventKind
	Frame    string // "" for the top document, else a cross-origin child frame's id
	Context  int64
	Payload  string
	Received time.Time
}

// WorldEventKind says what a WorldEvent is.
type WorldEventKind int

// Kinds of WorldEvent.
const (
	WorldContext WorldEventKind = iota + 1 // the top document's world context changed
	WorldCall                              // the script called the binding
)

// worldEvents is the capacity of WorldEvents; past it events are lost and
// WorldLoss says when.
const worldEvents = 1024

// worldState is the lease's view of the world; set by onEvent (the CDP
// reader), read by callers.
type worldState struct {
	cfg      atomic.Pointer[worldConfig] // nil: no world installed
	events   chan WorldEvent             // capacity worldEvents
	ctxID    atomic.Int64                // the top document's world context, 0 none
	uniqueID atomic.Value                // string: its unique id, for evaluation
	lostAt   atomic.Int64                // unix micro of the last event dropped; 0 none

	mu       sync.Mutex
	children map[string]*childFrame // guarded by mu: attached cross-origin frames by frame id
	closed   bool                   // guarded by mu: the lease is closing; attach no more
	wg       sync.WaitGroup         // attachChild goroutines
}

// childFrame is a cross-origin frame in its own process, with its own CDP
// session, running the world.
type childFrame struct {
	id       string
	ctx      context.Context // its chromedp session
	cancel   context.CancelFunc
	ctxID    atomic.Int64
	uniqueID atomic.Value
}

type worldConfig struct {
	w *World
}

// WorldEvents returns the world's events (never closed; select on Done).
func (l *Lease) WorldEvents() <-chan WorldEvent { return l.world.events }

// WorldLoss returns when an event was last dropped because WorldEvents was
// full, and clears it; zero when none was.
func (l *Lease) WorldLoss() time.Time {
	us := l.world.lostAt.Swap(0)
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us)
}

func (l *Lease) worldEvent(ev WorldEvent) {
	select {
	case l.world.events <- ev:
	default:
		l.world.lostAt.Store(ev.Received.UnixMicro())
	}
}

// onWorldEvent hands on the active tab's binding calls and attaches to its
// cross-origin frames. It runs on the CDP reader: no blocking, no CDP
// calls. The top document's context is followed by trackWorld.
func (l *Lease) onWorldEvent(ev any) {
	cfg := l.world.cfg.Load()
	if cfg == nil {
		return
	}
	w := cfg.w
	switch ev := ev.(type) {
	case *runtime.EventBindingCalled:
		if ev.Name == w.Binding {
			l.worldEvent(WorldEvent{Kind: WorldCall, Context: int64(ev.ExecutionContextID), Payload: ev.Payload, Received: time.Now()})
		}
	case *target.EventAttachedToTarget:
		if ev.TargetInfo != nil && ev.TargetInfo.Type == "iframe" {
			l.startChild(string(ev.TargetInfo.TargetID))
		}
	}
}

// trackWorld follows the world's context in t's top document, in every
// tab; the active tab's is the lease's (EvalWorld) and goes to
// WorldEvents. It runs on t's CDP reader with tabs.sw read-held.
func (l *Lease) trackWorld(t *tab, ev any, active bool) {
	cfg := l.world.cfg.Load()
	if cfg == nil {
		return
	}
	set := func(id int64, uid string) {
		t.wctx.Store(id)
		t.wuid.Store(uid)
		if active {
			l.world.ctxID.Store(id)
			l.world.uniqueID.Store(uid)
			l.worldEvent(WorldEvent{Kind: WorldContext, Context: id, Received: time.Now()})
		}
	}
	switch ev := ev.(type) {
	case *runtime.EventExecutionContextCreated:
		if ev.Context.Name != cfg.w.Name {
			return
		}
		var aux struct {
			FrameID string `json:"frameId"`
		}
		if json.Unmarshal(ev.Context.AuxData, &aux) != nil || aux.FrameID != t.target {
			return
		}
		set(int64(ev.Context.ID), ev.Context.UniqueID)
	case *runtime.EventExecutionContextDestroyed:
		if u, _ := t.wuid.Load().(string); u != "" && u == ev.ExecutionContextUniqueID {
			set(0, "")
		}
	case *runtime.EventExecutionContextsCleared:
		set(0, "")
	}
}

// activateWorld makes t's world context the lease's; SwitchTab calls it
// with tabs.sw held for writing. The masker is told that the document is
// gone and then that t's is there, so that it holds pictures until t's
// world reports, even when both contexts have the same number.
func (l *Lease) activateWorld(t *tab) {
	now := time.Now()
	uid, _ := t.wuid.Load().(string)
	l.world.ctxID.Store(t.wctx.Load())
	l.world.uniqueID.Store(uid)
	l.worldEvent(WorldEvent{Kind: WorldContext, Received: now})
	if id := t.wctx.Load(); id != 0 {
		l.worldEvent(WorldEvent{Kind: WorldContext, Context: id, Received: now})
	}
}

// dropChildren ends the sessions of the cross-origin frames of the tab
// that was active; each tells the masker it is gone as it ends.
func (l *Lease) dropChildren() {
	l.world.mu.Lock()
	defer l.world.mu.Unlock()
	for _, c := range l.world.children {
		c.cancel()
	}
}

// startChild attaches to a cross-origin frame's target off the CDP reader.
func (l *Lease) startChild(id string) {
	l.world.mu.Lock()
	defer l.world.mu.Unlock()
	if l.world.closed || l.world.children[id] != nil {
		return
	}
	if l.world.children == nil {
		l.world.children = make(map[string]*childFrame)
	}
	c := &childFrame{id: id}
	c.ctx, c.cancel = chromedp.NewContext(l.bctx, chromedp.WithTargetID(target.ID(id)), chromedp.WithDetachOnCancel())
	l.world.children[id] = c
	l.world.wg.Go(func() { l.runChild(c) })
}

// runChild runs the world in a child frame and tags its frame element in
// the top document's world, so that the top's reports say where it is;
// then it waits for the frame to go.
func (l *Lease) runChild(c *childFrame) {
	defer func() {
		c.cancel()
		l.world.mu.Lock()
		delete(l.world.children, c.id)
		l.world.mu.Unlock()
		l.worldEvent(WorldEvent{Kind: WorldContext, Frame: c.id, Received: time.Now()})
	}()
	cfg := l.world.cfg.Load()
	if err := chromedp.Listen(c.ctx, func(ev any) { l.onChildEvent(c, cfg.w, ev) }); err != nil {
		l.log.Debug("attach to frame", zap.Error(err))
		return
	}
	detached, err := chromedp.Detached(c.ctx)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	err = l.setupChild(ctx, c, cfg.w)
	cancel()
	if err != nil {
		l.log.Debug("run the world in a frame", zap.String("frame", c.id), zap.Error(err))
		return // the frame stays masked whole
	}
	select {
	case <-detached:
	case <-l.closing:
	case <-c.ctx.Done():
	}
}

func (l *Lease) setupChild(ctx context.Context, c *childFrame, w *World) error {
	if err := addWorld(ctx, w); err != nil {
		return err
	}
	// Tag the frame's element in the top document's world.
	top := l.world.ctxID.Load()
	if top == 0 {
		return errors.New("no top world to tag the frame in")
	}
	tctx, cancel := l.callCtx(ctx)
	defer cancel()
	owner, err := chromedp.Call(tctx, dom.GetFrameOwner, dom.GetFrameOwnerParams{FrameID: cdp.FrameID(c.id)})
	if err != nil {
		return fmt.Errorf("frame owner: %w", err)
	}
	obj, err := chromedp.Call(tctx, dom.ResolveNode, dom.ResolveNodeParams{BackendNodeID: owner.BackendNodeID, ExecutionContextID: runtime.ExecutionContextID(top)})
	if err != nil || obj.Object == nil {
		return fmt.Errorf("resolve frame owner in the top world (a frame inside a frame stays whole): %w", err)
	}
	arg, _ := json.Marshal(c.id)
	res, err := chromedp.Call(tctx, runtime.CallFunctionOn, runtime.CallFunctionOnParams{
		FunctionDeclaration: `function (id) { if (globalThis.__tandemMask) globalThis.__tandemMask.tag(this, id); }`,
		ObjectID:            obj.Object.ObjectID,
		Arguments:           []*runtime.CallArgument{{Value: arg}},
	})
	if err != nil {
		return fmt.Errorf("tag frame: %w", err)
	}
	if res.ExceptionDetails != nil {
		return fmt.Errorf("tag frame: %s", res.ExceptionDetails.Text)
	}
	_, _ = chromedp.Call(tctx, runtime.ReleaseObject, runtime.ReleaseObjectParams{ObjectID: obj.Object.ObjectID})
	return nil
}

// onChildEvent follows the world's contexts in a child frame's session.
func (l *Lease) onChildEvent(c *childFrame, w *World, ev any) {
	now := time.Now()
	switch ev := ev.(type) {
	case *runtime.EventExecutionContextCreated:
		var aux struct {
			FrameID string `json:"frameId"`
		}
		if ev.Context.Name != w.Name || json.Unmarshal(ev.Context.AuxData, &aux) != nil || aux.FrameID != c.id {
			return
		}
		c.ctxID.Store(int64(ev.Context.ID))
		c.uniqueID.Store(ev.Context.UniqueID)
		l.worldEvent(WorldEvent{Kind: WorldContext, Frame: c.id, Context: int64(ev.Context.ID), Received: now})
	case *runtime.EventExecutionContextDestroyed:
		if u, _ := c.uniqueID.Load().(string); u != "" && u == ev.ExecutionContextUniqueID {
			c.ctxID.Store(0)
			c.uniqueID.Store("")
			l.worldEvent(WorldEvent{Kind: WorldContext, Frame: c.id, Received: now})
		}
	case *runtime.EventExecutionContextsCleared:
		c.ctxID.Store(0)
		c.uniqueID.Store("")
		l.worldEvent(WorldEvent{Kind: WorldContext, Frame: c.id, Received: now})
	case *runtime.EventBindingCalled:
		if ev.Name == w.Binding {
			l.worldEvent(WorldEvent{Kind: WorldCall, Frame: c.id, Context: int64(ev.ExecutionContextID), Payload: ev.Payload, Received: now})
		}
	}
}

// WorldFrames returns the ids of the child frames that run the world now.
func (l *Lease) WorldFrames() []string {
	l.world.mu.Lock()
	defer l.world.mu.Unlock()
	out := make([]string, 0, len(l.world.children))
	for id := range l.world.children {
		out = append(out, id)
	}
	return out
}

// stopWorld ends the child frames' sessions; Close calls it.
func (l *Lease) stopWorld() {
	l.world.mu.Lock()
	l.world.closed = true
	for _, c := range l.world.children {
		c.cancel()
	}
	l.world.mu.Unlock()
	l.world.wg.Wait()
}

// installWorld adds the binding and the script to the tab; the script also
// runs at once in the documents already there. Tabs opened later get them
// when they open (tabs.go).
func (l *Lease) installWorld(ctx context.Context, w *World) error {
	cctx, cancel := l.callCtx(ctx)
	defer cancel()
	l.world.cfg.Store(&worldConfig{w: w})
	if err := addWorld(cctx, w); err != nil {
		return l.callErr(ctx, "install world", err)
	}
	return nil
}

// addWorld adds w's binding and script to the tab of ctx.
func addWorld(ctx context.Context, w *World) error {
	if _, err := chromedp.Call(ctx, runtime.AddBinding, runtime.AddBindingParams{Name: w.Binding, ExecutionContextName: w.Name}); err != nil {
		return fmt.Errorf("add world binding: %w", err)
	}
	now := true
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: w.Source, WorldName: w.Name, RunImmediately: &now,
	}); err != nil {
		return fmt.Errorf("add world script: %w", err)
	}
	return nil
}

// EvalWorld evaluates expr in the world of frame ("" for the top document)
// and returns the context it ran in and its string result. It fails with
// ErrNoWorld when there is no such context now.
func (l *Lease) EvalWorld(ctx context.Context, frame, expr string) (ctxID int64, result string, err error) {
	const what = "evaluate in world"
	if err := l.live(what); err != nil {
		return 0, "", err
	}
	session := l.active().ctx
	id := l.world.ctxID.Load()
	uid, _ := l.world.uniqueID.Load().(string)
	if frame != "" {
		l.world.mu.Lock()
		c := l.world.children[frame]
		l.world.mu.Unlock()
		if c == nil {
			return 0, "", ErrNoWorld
		}
		session = c.ctx
		id = c.ctxID.Load()
		uid, _ = c.uniqueID.Load().(string)
	}
	if id == 0 || uid == "" {
		return 0, "", ErrNoWorld
	}
	cctx, cancel := context.WithCancel(session)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	byValue := true
	res, err := chromedp.Call(cctx, runtime.Evaluate, runtime.EvaluateParams{
		Expression: expr, UniqueContextID: uid, ReturnByValue: &byValue,
	})
	if err != nil {
		return 0, "", l.callErr(ctx, what, err)
	}
	if res.ExceptionDetails != nil {
		return 0, "", fmt.Errorf("%s: %s", what, res.ExceptionDetails.Text)
	}
	if res.Result == nil {
		return 0, "", fmt.Errorf("%s: no result", what)
	}
	var str string
	if err := json.Unmarshal(res.Result.Value, &str); err != nil {
		return 0, "", fmt.Errorf("%s: result is not a string: %w", what, err)
	}
	return id, str, nil
}
