// Command base is the size baseline of the agent size probe: an HTTP/JSON
// server on TCP with the standard library only (what any agent costs).
package main

import (
	"encoding/json"
	"net"
	"net/http"
)

func main() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return
	}
	http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"ok": "yes"})
	}))
}
