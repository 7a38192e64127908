package results

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"net/url"
	"strconv"

	_ "modernc.org/sqlite" // OMNeT++'s SQLite result files, without cgo
)

// OMNeT++'s SQLite result files (outputscalarmanager-class =
// omnetpp::envir::SqliteOutputScalarManager, or opp_scavetool export -F
// SqliteScalarFile) hold the same items as the text format in tables: run,
// runAttr, runItervar, runConfig, scalar, parameter, statistic,
// histogramBin, vector, vectorData, and an attribute table per item kind.
// Rows are read through cursors ordered by id and attributes merged in by
// id, so that no table is held in memory.

func openDB(file string) (*sql.DB, error) {
	u := url.URL{Scheme: "file", Path: file, RawQuery: "mode=ro&_pragma=query_only(1)"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fileErr(file, 0, "open SQLite result file: %v", err)
	}
	// Each open cursor holds a connection; a few are merged at once.
	db.SetMaxOpenConns(4)
	return db, nil
}

func sqliteErr(file, what string, err error) error {
	return fileErr(file, 0, "SQLite result file: %s: %v", what, err)
}

type sqliteRuns struct {
	byID  map[int64]*Run
	order []*Run
	exp   map[int64]int // simtime exponent per run
}

func loadRuns(ctx context.Context, db *sql.DB, file string) (*sqliteRuns, error) {
	rs := &sqliteRuns{byID: map[int64]*Run{}, exp: map[int64]int{}}
	rows, err := db.QueryContext(ctx, `SELECT runId, runName, simtimeExp FROM run ORDER BY runId`)
	if err != nil {
		return nil, sqliteErr(file, "not an OMNeT++ result database (no run table)", err)
	}
	for rows.Next() {
		var id int64
		var exp int
		r := &Run{}
		if err := rows.Scan(&id, &r.ID, &exp); err != nil {
			rows.Close()
			return nil, sqliteErr(file, "run table", err)
		}
		rs.byID[id], rs.exp[id] = r, exp
		rs.order = append(rs.order, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, sqliteErr(file, "run table", err)
	}
	for _, q := range []struct {
		sql  string
		into func(*Run, Attr)
	}{
		{`SELECT runId, attrName, attrValue FROM runAttr ORDER BY rowid`, func(r *Run, a Attr) { r.Attrs = append(r.Attrs, a) }},
		{`SELECT runId, itervarName, itervarValue FROM runItervar ORDER BY rowid`, func(r *Run, a Attr) { r.Itervars = append(r.Itervars, a) }},
		{`SELECT runId, configKey, configValue FROM runConfig ORDER BY runId, configOrder`, func(r *Run, a Attr) { r.Config = append(r.Config, a) }},
	} {
		rows, err := db.QueryContext(ctx, q.sql)
		if err != nil {
			return nil, sqliteErr(file, "run metadata", err)
		}
		for rows.Next() {
			var id int64
			var a Attr
			if err := rows.Scan(&id, &a.Name, &a.Value); err != nil {
				rows.Close()
				return nil, sqliteErr(file, "run metadata", err)
			}
			if r := rs.byID[id]; r != nil {
				q.into(r, a)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, sqliteErr(file, "run metadata", err)
		}
	}
	return rs, nil
}

func sqliteHeader(file string) (*Header, error) {
	db, err := openDB(file)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rs, err := loadRuns(context.Background(), db, file)
	if err != nil {
		return nil, err
	}
	return &Header{Runs: rs.order}, nil
}

// attrCursor walks an attribute table ordered by item id, alongside the
// item cursor.
type attrCursor struct {
	rows *sql.Rows
	ok   bool
	id   int64
	a    Attr
	err  error
}

func newAttrCursor(ctx context.Context, db *sql.DB, table, idcol string) *attrCursor {
	c := &attrCursor{}
	if !tableExists(ctx, db, table) {
		return c
	}
	c.rows, c.err = db.QueryContext(ctx, fmt.Sprintf(`SELECT %s, attrName, attrValue FROM %s ORDER BY %s, rowid`, idcol, table, idcol))
	c.advance()
	return c
}

func (c *attrCursor) advance() {
	c.ok = false
	if c.rows == nil || c.err != nil {
		return
	}
	if c.rows.Next() {
		c.err = c.rows.Scan(&c.id, &c.a.Name, &c.a.Value)
		c.ok = c.err == nil
		return
	}
	c.err = c.rows.Err()
}

// take returns the attributes of item id (ids come in increasing order).
func (c *attrCursor) take(id int64) []Attr {
	var out []Attr
	for c.ok && c.id < id {
		c.advance()
	}
	for c.ok && c.id == id {
		out = append(out, c.a)
		c.advance()
	}
	return out
}

func (c *attrCursor) close() {
	if c.rows != nil {
		c.rows.Close()
	}
}

func tableExists(ctx context.Context, db *sql.DB, name string) bool {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?`, name).Scan(&n)
	return err == nil && n > 0
}

func nullFloat(v sql.NullFloat64) float64 {
	if !v.Valid {
		return math.NaN() // SQLite stores NaN as NULL
	}
	return v.Float64
}

func readSQLite(ctx context.Context, file string, opt Options, emit func(*Item) error) error {
	db, err := openDB(file)
	if err != nil {
		return err
	}
	defer db.Close()
	rs, err := loadRuns(ctx, db, file)
	if err != nil {
		return err
	}
	item := func(runID int64, typ, module, name string) (*Item, error) {
		r := rs.byID[runID]
		if r == nil {
			return nil, fileErr(file, 0, "SQLite result file: %s %s %s belongs to no run", typ, module, name)
		}
		return &Item{File: file, Run: r, Type: typ, Module: module, Name: name}, nil
	}
	if tableExists(ctx, db, "parameter") {
		if err := sqliteParams(ctx, db, file, item, emit); err != nil {
			return err
		}
	}
	if tableExists(ctx, db, "scalar") {
		if err := sqliteScalars(ctx, db, file, item, emit); err != nil {
			return err
		}
	}
	if tableExists(ctx, db, "statistic") {
		if err := sqliteStatistics(ctx, db, file, item, emit); err != nil {
			return err
		}
	}
	if opt.Vectors && tableExists(ctx, db, "vector") {
		if err := sqliteVectors(ctx, db, file, rs, item, emit); err != nil {
			return err
		}
	}
	return nil
}

type mkItem func(runID int64, typ, module, name string) (*Item, error)

func sqliteParams(ctx context.Context, db *sql.DB, file string, item mkItem, emit func(*Item) error) error {
	attrs := newAttrCursor(ctx, db, "paramAttr", "paramId")
	defer attrs.close()
	rows, err := db.QueryContext(ctx, `SELECT paramId, runId, moduleName, paramName, paramValue FROM parameter ORDER BY paramId`)
	if err != nil {
		return sqliteErr(file, "parameter table", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, run int64
		var mod, name, val string
		if err := rows.Scan(&id, &run, &mod, &name, &val); err != nil {
			return sqliteErr(file, "parameter table", err)
		}
		it, err := item(run, TypeParameter, mod, name)
		if err != nil {
			return err
		}
		it.Text, it.Attrs = val, attrs.take(id)
		if err := emit(it); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return sqliteErr(file, "parameter table", err)
	}
	return attrs.err
}

func sqliteScalars(ctx context.Context, db *sql.DB, file string, item mkItem, emit func(*Item) error) error {
	attrs := newAttrCursor(ctx, db, "scalarAttr", "scalarId")
	defer attrs.close()
	rows, err := db.QueryContext(ctx, `SELECT scalarId, runId, moduleName, scalarName, scalarValue FROM scalar ORDER BY scalarId`)
	if err != nil {
		return sqliteErr(file, "scalar table", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, run int64
		var mod, name string
		var v sql.NullFloat64
		if err := rows.Scan(&id, &run, &mod, &name, &v); err != nil {
			return sqliteErr(file, "scalar table", err)
		}
		it, err := item(run, TypeScalar, mod, name)
		if err != nil {
			return err
		}
		it.Value, it.Attrs = nullFloat(v), attrs.take(id)
		if err := emit(it); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return sqliteErr(file, "scalar table", err)
	}
	return attrs.err
}

func sqliteStatistics(ctx context.Context, db *sql.DB, file string, item mkItem, emit func(*Item) error) error {
	attrs := newAttrCursor(ctx, db, "statisticAttr", "statId")
	defer attrs.close()
	var bins *sql.Rows
	if tableExists(ctx, db, "histogramBin") {
		var err error
		if bins, err = db.QueryContext(ctx, `SELECT statId, lowerEdge, binValue FROM histogramBin ORDER BY statId, lowerEdge`); err != nil {
			return sqliteErr(file, "histogramBin table", err)
		}
		defer bins.Close()
	}
	var bin struct {
		ok         bool
		id         int64
		edge, val  float64
		err        error
		advance    func()
		takeBinsOf func(id int64, h *Histogram)
	}
	bin.advance = func() {
		bin.ok = false
		if bins == nil || bin.err != nil {
			return
		}
		if bins.Next() {
			bin.err = bins.Scan(&bin.id, &bin.edge, &bin.val)
			bin.ok = bin.err == nil
			return
		}
		bin.err = bins.Err()
	}
	bin.advance()
	rows, err := db.QueryContext(ctx, `SELECT statId, runId, moduleName, statName, isHistogram, isWeighted, statCount,
		statMean, statStddev, statSum, statSqrsum, statMin, statMax, statWeights, statWeightedSum, statWeightedSqrSum
		FROM statistic ORDER BY statId`)
	if err != nil {
		return sqliteErr(file, "statistic table", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, run, count int64
		var mod, name string
		var hist, weighted bool
		var mean, sd, sum, sqr, mn, mx, w, wsum, wsqr sql.NullFloat64
		if err := rows.Scan(&id, &run, &mod, &name, &hist, &weighted, &count, &mean, &sd, &sum, &sqr, &mn, &mx, &w, &wsum, &wsqr); err != nil {
			return sqliteErr(file, "statistic table", err)
		}
		it, err := item(run, TypeStatistic, mod, name)
		if err != nil {
			return err
		}
		s := &Stats{Count: count, Mean: nullFloat(mean), Stddev: nullFloat(sd), Min: nullFloat(mn), Max: nullFloat(mx),
			Sum: nullFloat(sum), SqrSum: nullFloat(sqr), Weighted: weighted, SumWeights: float64(count)}
		if weighted {
			s.SumWeights, s.Sum, s.SqrSum = nullFloat(w), nullFloat(wsum), nullFloat(wsqr)
		}
		it.Stats, it.Attrs = s, attrs.take(id)
		for bin.ok && bin.id < id {
			bin.advance()
		}
		if hist {
			it.Type = TypeHistogram
			h := &Histogram{}
			for bin.ok && bin.id == id {
				if math.IsInf(bin.edge, -1) {
					h.Underflows = bin.val
				} else {
					h.Edges = append(h.Edges, bin.edge)
					h.Values = append(h.Values, bin.val)
				}
				bin.advance()
			}
			if n := len(h.Values); n > 0 {
				h.Overflows = h.Values[n-1]
				h.Values = h.Values[:n-1]
			}
			it.Hist = h
		}
		if err := emit(it); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return sqliteErr(file, "statistic table", err)
	}
	if bin.err != nil {
		return sqliteErr(file, "histogramBin table", bin.err)
	}
	return attrs.err
}

// sqliteVector reads one vector's points through a query on demand.
type sqliteVector struct {
	db   *sql.DB
	file string
	id   int64
	exp  int
}

func (v *sqliteVector) query(fn func(raw int64, val float64) error) error {
	rows, err := v.db.Query(`SELECT simtimeRaw, value FROM vectorData WHERE vectorId = ? ORDER BY rowid`, v.id)
	if err != nil {
		return sqliteErr(v.file, "vectorData table", err)
	}
	defer rows.Close()
	for rows.Next() {
		var raw int64
		var val sql.NullFloat64
		if err := rows.Scan(&raw, &val); err != nil {
			return sqliteErr(v.file, "vectorData table", err)
		}
		if err := fn(raw, nullFloat(val)); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (v *sqliteVector) time(raw int64) float64 {
	return float64(raw) * math.Pow10(v.exp)
}

func (v *sqliteVector) points(fn func(t, val float64) error) error {
	return v.query(func(raw int64, val float64) error { return fn(v.time(raw), val) })
}

func (v *sqliteVector) each(col Column, fn func([]byte) error) error {
	var buf []byte
	return v.query(func(raw int64, val float64) error {
		x := val
		if col == ColTime {
			// Exact decimal text of raw × 10^exp, as the text format writes it.
			buf = appendSimtime(buf[:0], raw, v.exp)
			return fn(buf)
		}
		buf = appendFloat(buf[:0], x)
		return fn(buf)
	})
}

// appendSimtime writes raw × 10^exp (exp ≤ 0) in plain decimal.
func appendSimtime(b []byte, raw int64, exp int) []byte {
	if exp >= 0 {
		b = strconv.AppendInt(b, raw, 10)
		for i := 0; i < exp; i++ {
			b = append(b, '0')
		}
		return b
	}
	neg := raw < 0
	u := uint64(raw)
	if neg {
		u = uint64(-raw)
		b = append(b, '-')
	}
	digits := strconv.FormatUint(u, 10)
	k := -exp
	for len(digits) <= k {
		digits = "0" + digits
	}
	intPart, frac := digits[:len(digits)-k], digits[len(digits)-k:]
	for len(frac) > 0 && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	b = append(b, intPart...)
	if frac != "" {
		b = append(b, '.')
		b = append(b, frac...)
	}
	return b
}

func sqliteVectors(ctx context.Context, db *sql.DB, file string, rs *sqliteRuns, item mkItem, emit func(*Item) error) error {
	attrs := newAttrCursor(ctx, db, "vectorAttr", "vectorId")
	defer attrs.close()
	rows, err := db.QueryContext(ctx, `SELECT vectorId, runId, moduleName, vectorName, vectorCount, vectorMin, vectorMax, vectorSum, vectorSumSqr
		FROM vector ORDER BY vectorId`)
	if err != nil {
		return sqliteErr(file, "vector table", err)
	}
	// The vector rows are few; collect them so that each vector's data
	// query has the connection to itself.
	var items []*Item
	for rows.Next() {
		var id, run int64
		var mod, name string
		var count sql.NullInt64
		var mn, mx, sum, sqr sql.NullFloat64
		if err := rows.Scan(&id, &run, &mod, &name, &count, &mn, &mx, &sum, &sqr); err != nil {
			rows.Close()
			return sqliteErr(file, "vector table", err)
		}
		it, err := item(run, TypeVector, mod, name)
		if err != nil {
			rows.Close()
			return err
		}
		it.Attrs = attrs.take(id)
		it.Vector = &Vector{File: file, ID: id, Columns: "ETV", Count: count.Int64, Min: nullFloat(mn), Max: nullFloat(mx),
			Sum: nullFloat(sum), SqrSum: nullFloat(sqr), sqlite: &sqliteVector{db: db, file: file, id: id, exp: rs.exp[run]}}
		items = append(items, it)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return sqliteErr(file, "vector table", err)
	}
	for _, it := range items {
		if err := emit(it); err != nil {
			return err
		}
	}
	return attrs.err
}
