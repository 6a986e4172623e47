package emulator

import (
	"bytes"
	"net/http"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/plana-cli/plana/client"
)

const maxProfileSeconds = 60

// handleProfile answers GET /_emulator/pprof/profile?seconds=N with a CPU
// profile of the emulator over the next N seconds, for `go tool pprof`: how
// make bench finds the hot paths of a server under load.
func (s *Server) handleProfile(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	sec, err := strconv.Atoi(r.URL.Query().Get("seconds"))
	if err != nil || sec < 1 || sec > maxProfileSeconds {
		writeError(w, http.StatusBadRequest, client.CodeInvalidRequest, "seconds must be an integer from 1 to "+strconv.Itoa(maxProfileSeconds))
		return
	}
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		writeError(w, http.StatusConflict, client.CodeConflict, "a CPU profile is already running; retry when it ends")
		return
	}
	t := time.NewTimer(time.Duration(sec) * time.Second)
	select {
	case <-t.C:
	case <-r.Context().Done():
		t.Stop()
	}
	pprof.StopCPUProfile()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(buf.Bytes())
}
