package sink

import (
	"testing"

	"turf/schema"
)

// The batch columns are appended in the order of schema.EventColumns, the
// insert's column list: one value per listed column.
func TestBatchColumnsMatchSchema(t *testing.T) {
	c := newBatchColumns(1)
	c.add(&Event{Site: "s"}, "b")
	if got, want := len(c.values()), len(schema.EventColumns); got != want {
		t.Fatalf("the batch has %d columns, schema.EventColumns lists %d", got, want)
	}
}
