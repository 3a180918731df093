package agent

import "log"

func newStdLogger(logf func(string, ...any)) *log.Logger {
	return log.New(stdLogWriter{logf: logf}, "", 0)
}
