package main

import "testing"

// parseAutoInt takes what Python's int(s, 0) takes: the prefixes in
// either case, and zeros alone however written ("00", "0_0"); it refuses
// what Python refuses.
func TestParseAutoIntAsPython(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want uint64
		ok   bool
	}{
		{"0X1F", 31, true},
		{"0x1f", 31, true},
		{"0B101", 5, true},
		{"0b101", 5, true},
		{"0O17", 15, true},
		{"0o17", 15, true},
		{"00", 0, true},
		{"0_0", 0, true},
		{"0_0_0", 0, true},
		{"01", 0, false},
		{"0_1", 0, false},
		{"0X_1", 1, true},
	} {
		v, err := parseAutoInt(tc.s, 64)
		if tc.ok && (err != nil || v != tc.want) {
			t.Errorf("parseAutoInt(%q) = %d, %v; want %d (Python's int(%q, 0))", tc.s, v, err, tc.want, tc.s)
		}
		if !tc.ok && err == nil {
			t.Errorf("parseAutoInt(%q) = %d; want it refused, as Python does", tc.s, v)
		}
	}
}
