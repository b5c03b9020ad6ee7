package bus

import (
	"fmt"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// serverLogger adapts zap to nats-server's server.Logger. Fatalf is logged at
// Error level rather than exiting: the server calls it for conditions it then
// handles itself, and only main may end the process.
type serverLogger struct{ log *zap.Logger }

func (l serverLogger) logf(lvl zapcore.Level, format string, v []any) {
	if l.log.Core().Enabled(lvl) { // format only what will be written
		l.log.Log(lvl, fmt.Sprintf(format, v...))
	}
}

// Noticef logs at Info.
func (l serverLogger) Noticef(format string, v ...any) { l.logf(zap.InfoLevel, format, v) }

// Warnf logs at Warn.
func (l serverLogger) Warnf(format string, v ...any) { l.logf(zap.WarnLevel, format, v) }

// Fatalf logs at Error (see serverLogger).
func (l serverLogger) Fatalf(format string, v ...any) { l.logf(zap.ErrorLevel, format, v) }

// Errorf logs at Error.
func (l serverLogger) Errorf(format string, v ...any) { l.logf(zap.ErrorLevel, format, v) }

// Debugf logs at Debug.
func (l serverLogger) Debugf(format string, v ...any) { l.logf(zap.DebugLevel, format, v) }

// Tracef logs at Debug; the server only calls it when tracing, which Start
// leaves off because traces carry message payloads.
func (l serverLogger) Tracef(format string, v ...any) { l.logf(zap.DebugLevel, format, v) }
