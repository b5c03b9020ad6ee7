package rtc

import (
	"fmt"
	"strings"

	"github.com/pion/logging"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// loggerFactory adapts pion's scoped loggers onto zap. Each pion scope
// ("ice", "dtls", "pc", ...) becomes a field of a logger named "pion".
//
// Levels are mapped down: pion's Trace lines (per packet) are dropped, its
// Info lines (per connection step) become Debug, and its Error lines become
// Warn, because they describe one viewer's connection trouble that the
// peer's state machine recovers from, not something an operator must act on.
type loggerFactory struct {
	log *zap.Logger
}

var _ logging.LoggerFactory = (*loggerFactory)(nil)

// NewLogger returns the logger of one pion scope.
func (f *loggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return &leveledLogger{log: f.log.With(zap.String("scope", scope))}
}

// leveledLogger implements pion's logging.LeveledLogger on a zap.Logger.
// Formatting happens only when the level is enabled.
type leveledLogger struct {
	log *zap.Logger
}

// closingNoise are pion warnings that every ordinary hang-up produces (the
// transports close while their readers still run); they are Debug here.
var closingNoise = []string{"already closed", "conn is closed", "use of closed network connection"}

func (l *leveledLogger) emit(lvl zapcore.Level, msg string) {
	if lvl >= zapcore.WarnLevel {
		for _, n := range closingNoise {
			if strings.Contains(msg, n) {
				lvl = zapcore.DebugLevel
				break
			}
		}
	}
	if ce := l.log.Check(lvl, msg); ce != nil {
		ce.Write()
	}
}

func (l *leveledLogger) emitf(lvl zapcore.Level, format string, args ...any) {
	if !l.log.Core().Enabled(lvl) {
		return
	}
	l.emit(lvl, fmt.Sprintf(format, args...)) // emit may still lower a closing warning to Debug
}

func (l *leveledLogger) Trace(string)              {}
func (l *leveledLogger) Tracef(string, ...any)     {}
func (l *leveledLogger) Debug(msg string)          { l.emit(zapcore.DebugLevel, msg) }
func (l *leveledLogger) Debugf(f string, a ...any) { l.emitf(zapcore.DebugLevel, f, a...) }
func (l *leveledLogger) Info(msg string)           { l.emit(zapcore.DebugLevel, msg) }
func (l *leveledLogger) Infof(f string, a ...any)  { l.emitf(zapcore.DebugLevel, f, a...) }
func (l *leveledLogger) Warn(msg string)           { l.emit(zapcore.WarnLevel, msg) }
func (l *leveledLogger) Warnf(f string, a ...any)  { l.emitf(zapcore.WarnLevel, f, a...) }
func (l *leveledLogger) Error(msg string)          { l.emit(zapcore.WarnLevel, msg) }
func (l *leveledLogger) Errorf(f string, a ...any) { l.emitf(zapcore.WarnLevel, f, a...) }
