package database

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Embedded is the store grayzone ships so the lab runs with Go alone: a TCP
// server speaking enough of the PostgreSQL v3 protocol for pgx in simple
// protocol mode, serving exactly Schema, InsertRide and InsertPayment from
// memory. Behind a dblink it looks like PostgreSQL to the fault toxic too.
type Embedded struct {
	ln   net.Listener
	addr string

	mu      sync.Mutex // guards tables and nextPID
	tables  map[string]*memTable
	nextPID uint32

	connMu sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool

	wg        sync.WaitGroup
	closeOnce sync.Once
	stopWatch chan struct{}
}

// memTable keeps what the app's statements need: a bigserial and a count.
// Rows are not kept, so a long lab does not grow memory.
type memTable struct {
	nextID int64
	rows   int64
}

// EmbeddedUser and EmbeddedDatabase name the only role and database of the
// embedded store (any name is accepted; no password is asked).
const (
	EmbeddedUser     = "grayzone"
	EmbeddedDatabase = "grayzone"
)

// Statement templates of the embedded store: each CREATE TABLE of Schema and
// the app's two inserts.
var (
	tmplRide    = mustTemplate(InsertRide)
	tmplPayment = mustTemplate(InsertPayment)
	tmplCreate  = func() map[string]template {
		toks, err := lex(Schema)
		if err != nil {
			panic(fmt.Sprintf("database: schema: %v", err))
		}
		out := map[string]template{}
		for _, stmt := range splitStatements(toks) {
			// CREATE TABLE IF NOT EXISTS <name> (...)
			out[stmt[5].text] = template{toks: stmt}
		}
		return out
	}()
)

// StartEmbedded starts the embedded store on 127.0.0.1:0. It stops on Close
// or when ctx is done.
func StartEmbedded(ctx context.Context) (*Embedded, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("embedded store: listen: %w", err)
	}
	e := &Embedded{
		ln:        ln,
		addr:      ln.Addr().String(),
		tables:    map[string]*memTable{},
		conns:     map[net.Conn]struct{}{},
		stopWatch: make(chan struct{}),
	}
	e.wg.Add(1)
	go e.accept()
	go func() {
		select {
		case <-ctx.Done():
			_ = e.Close()
		case <-e.stopWatch:
		}
	}()
	return e, nil
}

// Addr is the store's host:port.
func (e *Embedded) Addr() string { return e.addr }

// URL is a pgx connection string for the store.
func (e *Embedded) URL() string {
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", EmbeddedUser, e.addr, EmbeddedDatabase)
}

// Count is the number of rows inserted into table so far (0 if it does not
// exist).
func (e *Embedded) Count(table string) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t, ok := e.tables[table]; ok {
		return t.rows
	}
	return 0
}

// Close stops accepting, closes every connection and waits for their
// goroutines.
func (e *Embedded) Close() error {
	var err error
	e.closeOnce.Do(func() {
		close(e.stopWatch)
		err = e.ln.Close()
		e.connMu.Lock()
		e.closed = true
		for c := range e.conns {
			_ = c.Close()
		}
		e.connMu.Unlock()
		e.wg.Wait()
	})
	if err != nil {
		return fmt.Errorf("embedded store: close: %w", err)
	}
	return nil
}

func (e *Embedded) accept() {
	defer e.wg.Done()
	for {
		conn, err := e.ln.Accept()
		if err != nil {
			return // closed
		}
		e.connMu.Lock()
		if e.closed {
			e.connMu.Unlock()
			_ = conn.Close()
			return
		}
		e.conns[conn] = struct{}{}
		e.wg.Add(1)
		e.connMu.Unlock()
		go func() {
			defer e.wg.Done()
			defer func() {
				e.connMu.Lock()
				delete(e.conns, conn)
				e.connMu.Unlock()
				_ = conn.Close()
			}()
			// A broken client only ends its own connection.
			_ = e.serve(conn)
		}()
	}
}

// serve runs one client connection until Terminate or an error.
func (e *Embedded) serve(conn net.Conn) error {
	be := pgproto3.NewBackend(conn, conn)
	be.SetMaxBodyLen(1 << 20)

	// Startup: refuse encryption, answer cancels (nothing runs long enough to
	// be cancelled) by hanging up, accept any user without a password.
	var startup *pgproto3.StartupMessage
	for startup == nil {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return fmt.Errorf("startup: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest, *pgproto3.GSSEncRequest:
			if _, err := conn.Write([]byte{'N'}); err != nil {
				return fmt.Errorf("refuse encryption: %w", err)
			}
		case *pgproto3.CancelRequest:
			return nil
		case *pgproto3.StartupMessage:
			startup = m
		default:
			return fmt.Errorf("unexpected startup message %T", msg)
		}
	}
	if startup.ProtocolVersion != pgproto3.ProtocolVersion30 {
		// Speak 3.0 only; tell a 3.2 client so.
		be.Send(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0})
	}
	e.mu.Lock()
	e.nextPID++
	pid := e.nextPID
	e.mu.Unlock()
	secret := make([]byte, 4)
	_, _ = rand.Read(secret)

	be.Send(&pgproto3.AuthenticationOk{})
	for _, p := range [][2]string{
		{"server_version", "15.0 (grayzone embedded)"},
		{"server_encoding", "UTF8"},
		{"client_encoding", "UTF8"},
		{"standard_conforming_strings", "on"},
		{"DateStyle", "ISO, MDY"},
		{"integer_datetimes", "on"},
		{"TimeZone", "UTC"},
	} {
		be.Send(&pgproto3.ParameterStatus{Name: p[0], Value: p[1]})
	}
	be.Send(&pgproto3.BackendKeyData{ProcessID: pid, SecretKey: secret})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if err := be.Flush(); err != nil {
		return fmt.Errorf("startup reply: %w", err)
	}

	// skipToSync is set after an extended-protocol message was refused:
	// PostgreSQL discards messages until Sync after an error.
	skipToSync := false
	for {
		msg, err := be.Receive()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("receive: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.Query:
			e.simpleQuery(be, m.String)
		case *pgproto3.Terminate:
			return nil
		case *pgproto3.Sync:
			skipToSync = false
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		case *pgproto3.Flush:
		case *pgproto3.Parse, *pgproto3.Bind, *pgproto3.Describe, *pgproto3.Execute, *pgproto3.Close:
			if !skipToSync {
				skipToSync = true
				be.Send(errResponse("0A000", "embedded store: extended protocol not supported; use the simple protocol"))
			}
		default:
			be.Send(errResponse("08P01", fmt.Sprintf("embedded store: unexpected message %T", msg)))
			_ = be.Flush()
			return fmt.Errorf("unexpected message %T", msg)
		}
		if err := be.Flush(); err != nil {
			return fmt.Errorf("send: %w", err)
		}
	}
}

func errResponse(code, msg string) *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: code, Message: msg}
}

// sqlError is an error with a SQLSTATE for the client.
type sqlError struct {
	code string
	msg  string
}

func (e *sqlError) Error() string { return e.msg }

// simpleQuery runs every statement of one Query message, stopping at the
// first error, and ends with ReadyForQuery like PostgreSQL.
func (e *Embedded) simpleQuery(be *pgproto3.Backend, sql string) {
	defer be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	toks, err := lex(sql)
	if err != nil {
		be.Send(errResponse("42601", "embedded store: syntax error: "+err.Error()))
		return
	}
	stmts := splitStatements(toks)
	if len(stmts) == 0 {
		// Empty or comments only, e.g. pgx's "-- ping".
		be.Send(&pgproto3.EmptyQueryResponse{})
		return
	}
	for _, stmt := range stmts {
		if err := e.exec(be, stmt); err != nil {
			var se *sqlError
			if !errors.As(err, &se) {
				se = &sqlError{code: "XX000", msg: err.Error()}
			}
			be.Send(errResponse(se.code, "embedded store: "+se.msg))
			return
		}
	}
}

var idField = []pgproto3.FieldDescription{{
	Name:         []byte("id"),
	DataTypeOID:  20, // int8
	DataTypeSize: 8,
	TypeModifier: -1,
	Format:       0, // text
}}

// exec runs one statement and sends its results.
func (e *Embedded) exec(be *pgproto3.Backend, stmt []token) error {
	if args, ok := tmplRide.match(stmt); ok {
		if args[0].null || args[1].null {
			return &sqlError{code: "23502", msg: "null value in a NOT NULL column of rides"}
		}
		return e.insert(be, "rides")
	}
	if args, ok := tmplPayment.match(stmt); ok {
		if args[0].null || args[1].null || args[2].null {
			return &sqlError{code: "23502", msg: "null value in a NOT NULL column of payments"}
		}
		if _, err := args[2].int64(); err != nil {
			return &sqlError{code: "22P02", msg: fmt.Sprintf("invalid input syntax for type bigint: %q", args[2].text)}
		}
		return e.insert(be, "payments")
	}
	for name, t := range tmplCreate {
		if _, ok := t.match(stmt); ok {
			e.mu.Lock()
			if _, exists := e.tables[name]; !exists {
				e.tables[name] = &memTable{}
			}
			e.mu.Unlock()
			be.Send(&pgproto3.CommandComplete{CommandTag: []byte("CREATE TABLE")})
			return nil
		}
	}
	return &sqlError{code: "0A000", msg: "unsupported statement (only grayzone's schema and app queries are served): " + render(stmt)}
}

func (e *Embedded) insert(be *pgproto3.Backend, table string) error {
	e.mu.Lock()
	t, ok := e.tables[table]
	if !ok {
		e.mu.Unlock()
		return &sqlError{code: "42P01", msg: fmt.Sprintf("relation %q does not exist (run Migrate)", table)}
	}
	t.nextID++
	t.rows++
	id := t.nextID
	e.mu.Unlock()
	be.Send(&pgproto3.RowDescription{Fields: idField})
	be.Send(&pgproto3.DataRow{Values: [][]byte{strconv.AppendInt(nil, id, 10)}})
	be.Send(&pgproto3.CommandComplete{CommandTag: []byte("INSERT 0 1")})
	return nil
}

// render is a statement for error messages, shortened.
func render(stmt []token) string {
	var b []byte
	for i, t := range stmt {
		if i > 0 {
			b = append(b, ' ')
		}
		if t.kind == tokString {
			b = append(b, '\'')
			b = append(b, t.text...)
			b = append(b, '\'')
		} else {
			b = append(b, t.text...)
		}
		if len(b) > 200 {
			return string(b[:200]) + "..."
		}
	}
	return string(b)
}
