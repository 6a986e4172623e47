package emulator

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/plana-cli/plana/client"
)

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// pageSize reads the page_size parameter; a bad one is answered 400 here, so
// every list refuses it with the same words.
func pageSize(w http.ResponseWriter, v string) (int, bool) {
	if v == "" {
		return defaultPageSize, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxPageSize {
		writeError(w, http.StatusBadRequest, client.CodeInvalidRequest, fmt.Sprintf("page_size must be an integer from 1 to %d", maxPageSize))
		return 0, false
	}
	return n, true
}

// Page tokens are opaque to clients: base64 of the sort position of the last
// row served, so pages stay stable while rows are added.
func encodeCursor(a int64, b string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(a, 10) + ":" + b))
}

func decodeCursor(tok string) (int64, string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, "", false
	}
	a, b, ok := strings.Cut(string(raw), ":")
	if !ok || b == "" {
		return 0, "", false
	}
	n, err := strconv.ParseInt(a, 10, 64)
	return n, b, err == nil
}

// queryPage runs a keyset-paged query: base, filtered by where, in order,
// reading one row more than size to know whether another page follows; the
// cursor of a page's last row is the next page's token.
func queryPage[T any](ctx context.Context, db *sql.DB, base string, where []string, args []any, order string, size int,
	scan func(*sql.Rows) (T, error), cursor func(T) string) ([]T, string, error) {
	query := base
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY " + order + " LIMIT ?"
	rows, err := db.QueryContext(ctx, query, append(args, size+1)...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if len(out) <= size {
		return out, "", nil
	}
	out = out[:size]
	return out, cursor(out[size-1]), nil
}
