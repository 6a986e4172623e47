// Command bare is the baseline of the throughput benchmark: a plain net/http
// server that answers every request with the same JSON bos-emulator gives an
// automation call, and does no authentication, no database and no logging.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bare: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "bare: listening on http://%s\n", ln.Addr())
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := json.Marshal(map[string]any{"ok": true, "method": r.Method, "path": r.URL.Path})
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(b, '\n'))
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintf(os.Stderr, "bare: %v\n", err)
		os.Exit(1)
	}
}
