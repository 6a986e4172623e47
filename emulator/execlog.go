package emulator

import (
	"database/sql"
	"net/http"
	"strconv"
	"time"

	"github.com/plana-cli/plana/client"
)

func parseTimeParam(v string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, v)
	return t, err == nil
}

func (s *Server) handleLog(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var where []string
	var args []any
	if v := q.Get("key_id"); v != "" {
		where = append(where, "key_id = ?")
		args = append(args, v)
	}
	if v := q.Get("key_prefix"); v != "" {
		where = append(where, "key_prefix = ?")
		args = append(args, v)
	}
	var bound [2]*int64 // since, until
	for i, name := range []string{"since", "until"} {
		v := q.Get(name)
		if v == "" {
			continue
		}
		t, ok := parseTimeParam(v)
		if !ok {
			writeError(w, http.StatusBadRequest, client.CodeInvalidRequest, name+" must be an RFC 3339 time")
			return
		}
		n := nanos(t)
		bound[i] = &n
	}
	if bound[0] != nil {
		where = append(where, "at >= ?")
		args = append(args, *bound[0])
	}
	size, ok := pageSize(w, q.Get("page_size"))
	if !ok {
		return
	}
	// The page's upper end is the cursor's position when it comes before
	// until, so that it bounds the index scan: with both, SQLite scans from
	// until down, and each page of a long log costs more than the last.
	switch tok := q.Get("page_token"); {
	case tok != "":
		at, seqStr, ok := decodeCursor(tok)
		seq, err := strconv.ParseInt(seqStr, 10, 64)
		if !ok || err != nil {
			writeError(w, http.StatusBadRequest, client.CodeInvalidRequest, "invalid page_token")
			return
		}
		if bound[1] != nil && *bound[1] <= at {
			where = append(where, "at < ?")
			args = append(args, *bound[1])
			break
		}
		where = append(where, "at <= ? AND (at < ? OR seq < ?)")
		args = append(args, at, at, seq)
	case bound[1] != nil:
		where = append(where, "at < ?")
		args = append(args, *bound[1])
	}
	// seq orders entries stamped in the same nanosecond; the cursor needs it.
	type logRow struct {
		e   client.ExecutionLogEntry
		seq int64
	}
	page, next, err := queryPage(r.Context(), s.db,
		`SELECT seq, id, at, key_id, key_prefix, method, path, status, source_ip, user_agent FROM execution_log`,
		where, args, "at DESC, seq DESC", size,
		func(rows *sql.Rows) (logRow, error) {
			var l logRow
			var at int64
			err := rows.Scan(&l.seq, &l.e.ID, &at, &l.e.KeyID, &l.e.KeyPrefix, &l.e.Method, &l.e.Path, &l.e.Status, &l.e.SourceIP, &l.e.UserAgent)
			l.e.At = fromNanos(at)
			return l, err
		},
		func(l logRow) string { return encodeCursor(nanos(l.e.At), strconv.FormatInt(l.seq, 10)) })
	if err != nil {
		s.internalError(w, err)
		return
	}
	resp := client.ExecutionLogResponse{Entries: make([]client.ExecutionLogEntry, len(page)), NextPageToken: next}
	for i, l := range page {
		resp.Entries[i] = l.e
	}
	writeJSON(w, http.StatusOK, resp)
}
