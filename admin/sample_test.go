package admin

import (
	"testing"
	"time"

	"github.com/breakwater/breakwater/api"
	"github.com/breakwater/breakwater/audit"
)

func TestJudgeSample(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	e := func(min int, kind string, via string, ids ...string) audit.Entry {
		return audit.Entry{AuditEntry: api.AuditEntry{At: at.Add(time.Duration(min) * time.Minute), Kind: kind, Via: via, Count: len(ids)}, IDs: ids}
	}
	var sample []audit.Entry
	for i := range 20 {
		kind := audit.KindReject
		if i < 3 {
			kind = audit.KindApprove
		}
		sample = append(sample, e(i, kind, "", string(rune('a'+i))))
	}
	tests := []struct {
		name    string
		entries []audit.Entry
		want    string
	}{
		{"none", nil, ""},
		{"17 of 20", sample, "17 of 20 sampled rejected: about 85% wrong"},
		{"bulk and standing decisions judge nothing", append([]audit.Entry{
			e(30, audit.KindApprove, "", "x", "y", "z"), e(31, audit.KindReject, audit.ViaStanding, "w"),
		}, sample...), "17 of 20 sampled rejected: about 85% wrong"},
		{"an undone verdict does not count, a later one does", append(append([]audit.Entry{}, sample...),
			e(40, audit.KindUndo, "", "d"), e(41, audit.KindUndo, "", "e"), e(42, audit.KindApprove, "", "e")),
			"15 of 19 sampled rejected: about 79% wrong"},
		{"in any order", []audit.Entry{e(5, audit.KindUndo, "", "a"), e(1, audit.KindReject, "", "a"), e(2, audit.KindApprove, "", "b")},
			"0 of 1 sampled rejected: about 0% wrong"},
	}
	for _, tt := range tests {
		got := judgeSample(tt.entries)
		switch {
		case tt.want == "" && got != nil:
			t.Errorf("%s: judgeSample = %+v; want nil", tt.name, got)
		case tt.want != "" && (got == nil || got.Text != tt.want):
			t.Errorf("%s: judgeSample = %+v; want %q", tt.name, got, tt.want)
		}
	}
}
