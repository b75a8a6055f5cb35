package nuonuo

import "sort"

// TableCodes lists every exact code of the classification table, so that a
// test can prove each row is reached over HTTP.
func TableCodes() []string {
	codes := make([]string, 0, len(table))
	for c := range table {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	return codes
}
