package emulator

import (
	"context"
	"database/sql"
	"errors"
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
type logWriter struct {
	db *sql.DB
	// Statements prepared once: parsing the SQL for every entry cost more
	// than inserting it.
	insert, touch *sql.Stmt
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
	done  chan error
}

func startLogWriter(db *sql.DB, granularity time.Duration) (*logWriter, error) {
	insert, err := db.Prepare(insertLogSQL)
	if err != nil {
		return nil, err
	}
	touch, err := db.Prepare(touchKeySQL)
	if err != nil {
		insert.Close()
		return nil, err
	}
	w := &logWriter{
		db:          db,
		insert:      insert,
		touch:       touch,
		granularity: granularity,
		jobs:        make(chan *logJob, maxBatch),
		quit:        make(chan struct{}),
		stopped:     make(chan struct{}),
	}
	go w.run()
	return w, nil
}

// append queues e, and with touch its key's last_used_at, and waits until it
// is committed. It does not give up when the client goes away: a request that
// was handled must be logged.
func (w *logWriter) append(e client.ExecutionLogEntry, touch bool) error {
	j := &logJob{entry: e, touch: touch, done: make(chan error, 1)}
	select {
	case w.jobs <- j:
	case <-w.stopped:
		return errWriterStopped
	}
	select {
	case err := <-j.done:
		return err
	case <-w.stopped:
		select {
		case err := <-j.done:
			return err
		default:
			return errWriterStopped
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
	// A batch is mostly one busy key's calls: last_used_at is set once per
	// key, to the latest of them, rather than once per entry.
	used := map[string]time.Time{}
	for _, j := range batch {
		if _, err := insert.ExecContext(ctx, logEntryArgs(j.entry)...); err != nil {
			return err
		}
		if at := j.entry.At; j.touch && at.After(used[j.entry.KeyID]) {
			used[j.entry.KeyID] = at
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

// stop commits whatever is queued and ends the writer.
func (w *logWriter) stop() {
	close(w.quit)
	<-w.stopped
	w.insert.Close()
	w.touch.Close()
}
