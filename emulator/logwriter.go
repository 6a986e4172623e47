package emulator

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/plana-cli/plana/client"
)

// maxBatch bounds one group commit so a burst cannot hold the only database
// connection for long.
const maxBatch = 512

var errWriterStopped = errors.New("execution-log writer stopped")

// logWriter is the single writer of execution-log entries and last_used_at.
// Handlers hand it an entry and wait; it commits every entry that queued up
// meanwhile in one transaction (group commit), so N concurrent requests cost
// one fsync rather than N, and a handler answers only once its entry is durable.
//
// That transaction is also where a request that wrote nothing else meets a
// revoke of its key: it re-checks the key, and a key revoked by then turns
// the entry into a 401 (see logJob.recheck). Transactions run one at a time
// on the only connection, so a revoke either committed before (the row or
// the in-memory mark says so) or commits after, with a revoked_at later than
// every entry this one accepted.
type logWriter struct {
	db *sql.DB
	// Statements prepared once: parsing the SQL for every entry cost more
	// than inserting it.
	insert, touch, revoked *sql.Stmt
	// markedRevoked is the server's in-memory revoke mark, which a revoke
	// sets before its own commit.
	markedRevoked func(keyID string) bool
	granularity   time.Duration
	jobs          chan *logJob
	quit          chan struct{}
	stopped       chan struct{}

	// entries and commits give the mean batch size: fsyncs per request.
	entries atomic.Int64
	commits atomic.Int64
}

type logJob struct {
	entry client.ExecutionLogEntry
	// touch moves the key's last_used_at; a revoked key's refused call is
	// logged without it, so last_used_at stays the last call it was accepted for.
	touch bool
	// recheck is set for an accepted request that wrote nothing else: its
	// key is checked in the transaction that records it, and if revoked by
	// then the request is refused: logged 401, without touch.
	recheck bool
	// refused is the writer's verdict on a recheck, read once done is.
	refused bool
	done    chan error
}

const revokedSQL = `SELECT revoked_at IS NOT NULL FROM api_keys WHERE id = ?`

func startLogWriter(db *sql.DB, granularity time.Duration, markedRevoked func(string) bool) (*logWriter, error) {
	var stmts []*sql.Stmt
	for _, q := range []string{insertLogSQL, touchKeySQL, revokedSQL} {
		st, err := db.Prepare(q)
		if err != nil {
			for _, p := range stmts {
				p.Close()
			}
			return nil, err
		}
		stmts = append(stmts, st)
	}
	w := &logWriter{
		db:            db,
		insert:        stmts[0],
		touch:         stmts[1],
		revoked:       stmts[2],
		markedRevoked: markedRevoked,
		granularity:   granularity,
		jobs:          make(chan *logJob, maxBatch),
		quit:          make(chan struct{}),
		stopped:       make(chan struct{}),
	}
	go w.run()
	return w, nil
}

// append queues e, and with touch its key's last_used_at, and waits until it
// is committed. With recheck, it reports whether the request was refused
// because its key was revoked meanwhile (the entry then says 401). It does
// not give up when the client goes away: a request that was handled must be
// logged.
func (w *logWriter) append(e client.ExecutionLogEntry, touch, recheck bool) (refused bool, err error) {
	j := &logJob{entry: e, touch: touch, recheck: recheck && touch, done: make(chan error, 1)}
	select {
	case w.jobs <- j:
	case <-w.stopped:
		return false, errWriterStopped
	}
	select {
	case err := <-j.done:
		return j.refused, err
	case <-w.stopped:
		select {
		case err := <-j.done:
			return j.refused, err
		default:
			return false, errWriterStopped
		}
	}
}

func (w *logWriter) run() {
	defer close(w.stopped)
	for {
		select {
		case j := <-w.jobs:
			w.commit(w.collect(j))
		case <-w.quit:
			for {
				select {
				case j := <-w.jobs:
					w.commit(w.collect(j))
				default:
					return
				}
			}
		}
	}
}

func (w *logWriter) collect(first *logJob) []*logJob {
	batch := []*logJob{first}
	for len(batch) < maxBatch {
		select {
		case j := <-w.jobs:
			batch = append(batch, j)
		default:
			return batch
		}
	}
	return batch
}

func (w *logWriter) commit(batch []*logJob) {
	err := w.write(batch)
	if err == nil {
		w.commits.Add(1)
		w.entries.Add(int64(len(batch)))
	}
	for _, j := range batch {
		j.done <- err
	}
}

func (w *logWriter) write(batch []*logJob) error {
	ctx := context.Background()
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	insert, touch := tx.StmtContext(ctx, w.insert), tx.StmtContext(ctx, w.touch)
	if err := w.recheck(ctx, tx, batch); err != nil {
		return err
	}
	// A batch is mostly one busy key's calls: last_used_at is set once per
	// key, to the latest of them, rather than once per entry.
	used := map[string]time.Time{}
	for _, j := range batch {
		e := j.entry
		if j.refused {
			e.Status = http.StatusUnauthorized
		}
		if _, err := insert.ExecContext(ctx, logEntryArgs(e)...); err != nil {
			return err
		}
		if at := e.At; j.touch && !j.refused && at.After(used[e.KeyID]) {
			used[e.KeyID] = at
		}
	}
	for keyID, at := range used {
		if w.granularity > 0 {
			at = at.Truncate(w.granularity)
		}
		if _, err := touch.ExecContext(ctx, nanos(at), keyID); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// recheck refuses, inside tx, the jobs to recheck whose key is revoked: each
// distinct key is looked up once per batch.
func (w *logWriter) recheck(ctx context.Context, tx *sql.Tx, batch []*logJob) error {
	var (
		revoked map[string]bool
		lookup  *sql.Stmt
	)
	for _, j := range batch {
		if !j.recheck {
			continue
		}
		id := j.entry.KeyID
		gone, seen := revoked[id]
		if !seen {
			gone = w.markedRevoked(id)
			if !gone {
				if lookup == nil {
					lookup = tx.StmtContext(ctx, w.revoked)
				}
				err := lookup.QueryRowContext(ctx, id).Scan(&gone)
				if errors.Is(err, sql.ErrNoRows) {
					gone = true
				} else if err != nil {
					return err
				}
			}
			if revoked == nil {
				revoked = map[string]bool{}
			}
			revoked[id] = gone
		}
		j.refused = gone
	}
	return nil
}

// stop commits whatever is queued and ends the writer.
func (w *logWriter) stop() {
	close(w.quit)
	<-w.stopped
	w.insert.Close()
	w.touch.Close()
	w.revoked.Close()
}
