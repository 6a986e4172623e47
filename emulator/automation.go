package emulator

import "net/http"

// handleAutomation answers the automation's own calls: BOS business
// endpoints are out of scope, but each call must authenticate and show up in
// the log.
func (s *Server) handleAutomation(w http.ResponseWriter, r *http.Request, p string) {
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "method": r.Method, "path": p})
}
