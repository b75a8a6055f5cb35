package jumdata

import "sort"

// TableRows lists the classification table's keys, for the test that every
// row is reached.
func TableRows() []string {
	rows := make([]string, 0, len(table))
	for k := range table {
		rows = append(rows, k)
	}
	sort.Strings(rows)
	return rows
}
