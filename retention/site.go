package retention

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

func siteWhere(site string) string { return "site = " + quoteString(site) }

// PlanErase looks at what erasing a site would remove from every table,
// changing nothing.
func PlanErase(ctx context.Context, conn driver.Conn, db, site string) ([]Removal, error) {
	tables, err := Discover(ctx, conn, db)
	if err != nil {
		return nil, err
	}
	var out []Removal
	for _, t := range tables {
		r, err := planRemoval(ctx, conn, db, t, siteWhere(site))
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Erase removes what PlanErase found and waits until the deletions are done,
// then checks that no row of the site is left. Rows of the site that arrive
// meanwhile (a collector still configured for it) are reported as left over.
func Erase(ctx context.Context, conn driver.Conn, db, cluster string, plan []Removal) error {
	for _, r := range plan {
		if err := r.apply(ctx, conn, db, cluster, true, true); err != nil {
			return err
		}
	}
	var left []string
	for _, r := range plan {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+fullName(db, r.Table)+" WHERE "+r.Where).Scan(&n); err != nil {
			return fmt.Errorf("cannot check the erasure in %s: %w", r.Table.Name, err)
		}
		if n > 0 {
			left = append(left, fmt.Sprintf("%s: %d", r.Table.Name, n))
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("rows of the site remain after erasing (%s): is a collector still accepting it? Remove it from --site and erase again", strings.Join(left, ", "))
	}
	return nil
}

// Exported is one file written by Export.
type Exported struct {
	Table string
	Path  string
	Rows  int
}

// Export writes every row of site, table by table, as CSV with a header to
// dir/<table>.csv, and the column types to dir/<table>.structure.txt in the
// form ClickHouse's file() and clickhouse-local take, so that the files load
// back with their types (and convert to Parquet) without guessing. Values are
// rendered by ClickHouse's toString, the text form its CSV reader parses.
// Rollup tables are left out: they are rebuilt from the exported events.
func Export(ctx context.Context, conn driver.Conn, db, site, dir string) ([]Exported, error) {
	tables, err := Discover(ctx, conn, db)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot create export directory: %w", err)
	}
	var out []Exported
	for _, t := range tables {
		if t.Config || t.Rollup {
			continue
		}
		e, err := exportTable(ctx, conn, db, t, site, dir)
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

func exportTable(ctx context.Context, conn driver.Conn, db string, t Table, site, dir string) (ex Exported, err error) {
	name := strings.TrimPrefix(t.Name, ".")
	ex = Exported{Table: t.Name, Path: filepath.Join(dir, name+".csv")}
	var sel, structure []string
	for _, c := range t.Columns {
		sel = append(sel, "toString("+quoteIdent(c.Name)+")")
		structure = append(structure, c.Name+" "+c.Type)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".structure.txt"), []byte(strings.Join(structure, ", ")+"\n"), 0o640); err != nil {
		return ex, fmt.Errorf("cannot write export: %w", err)
	}
	q := "SELECT " + strings.Join(sel, ", ") + " FROM " + fullName(db, t) + " WHERE " + siteWhere(site)
	if t.TimeColumn != "" {
		q += " ORDER BY " + quoteIdent(t.TimeColumn)
	}
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return ex, fmt.Errorf("cannot read %s: %w", t.Name, err)
	}
	defer rows.Close()
	f, err := os.OpenFile(ex.Path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return ex, fmt.Errorf("cannot write export: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("cannot write export: %w", cerr)
		}
	}()
	w := csv.NewWriter(f)
	header := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		header[i] = c.Name
	}
	if err := w.Write(header); err != nil {
		return ex, fmt.Errorf("cannot write export: %w", err)
	}
	vals := make([]string, len(t.Columns))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return ex, fmt.Errorf("cannot read %s: %w", t.Name, err)
		}
		if err := w.Write(vals); err != nil {
			return ex, fmt.Errorf("cannot write export: %w", err)
		}
		ex.Rows++
	}
	if err := rows.Err(); err != nil {
		return ex, fmt.Errorf("cannot read %s: %w", t.Name, err)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return ex, fmt.Errorf("cannot write export: %w", err)
	}
	return ex, nil
}

// ErrNoSite is returned for an empty site name: an empty name would match
// nothing and report success.
var ErrNoSite = errors.New("no site given: name the site, e.g. example.com")
