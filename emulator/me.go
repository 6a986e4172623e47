package emulator

import (
	"net/http"

	"github.com/plana-cli/plana/client"
)

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request, c *caller) {
	k, err := loadKey(r.Context(), s.db, c.key.ID)
	if err != nil {
		s.internalError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, client.Me{User: c.user, Workspace: s.workspace(r), Key: k})
}

func (s *Server) workspace(r *http.Request) client.Workspace {
	if ws, err := loadWorkspace(r.Context(), s.db); err == nil {
		return ws
	}
	return s.ws
}
