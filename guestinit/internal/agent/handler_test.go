package agent

import (
	"io"
	"net/http"
	"net/textproto"
)

// Handler adapts the agent's handlers to net/http for tests (httptest
// recorders, man-in-the-middle rewriters). Production serving goes through
// Serve and the agent's own HTTP/1.1 reader.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, s.opts.MaxBodyBytes+1))
		var resp response
		switch {
		case err != nil:
			resp = errorResponse(400, "bad_request", err.Error())
		case int64(len(body)) > s.opts.MaxBodyBytes:
			resp = errorResponse(413, "body_too_large", "request body too large")
		default:
			resp = s.handle(&request{
				ctx: r.Context(), method: r.Method, path: r.URL.EscapedPath(), rawQuery: r.URL.RawQuery,
				proto: r.Proto, header: textproto.MIMEHeader(r.Header), body: body, remote: r.RemoteAddr,
			})
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		if resp.allow != "" {
			h.Set("Allow", resp.allow)
		}
		if resp.retry {
			h.Set("Retry-After", "1")
		}
		w.WriteHeader(resp.status)
		w.Write(resp.body)
	})
}
