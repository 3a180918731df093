// Command base is the alternative the agent avoids: a net/http JSON server
// (net/http links crypto/tls and more), without any agent logic.
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
