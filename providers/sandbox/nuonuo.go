package sandbox

import "net/http"

// nuonuoState is the Nuonuo side's memory. (To be written: orders, tokens,
// red confirmation forms.)
type nuonuoState struct{}

func newNuonuoState() *nuonuoState { return &nuonuoState{} }

var nuonuoSpec = providerSpec{
	name:   "nuonuo",
	seller: func(r *http.Request) string { return r.Header.Get("userTax") },
	method: func(r *http.Request) string { return r.Header.Get("method") },
	answer: func(w http.ResponseWriter, code, message string) {
		writeJSON(w, http.StatusOK, map[string]string{"code": code, "describe": message})
	},
	rateLimited: func(w http.ResponseWriter) {
		writeJSON(w, http.StatusOK, map[string]string{"code": "070201", "describe": "请求过于频繁"})
	},
}

func (s *Server) nuonuoServices(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "not implemented", http.StatusNotImplemented)
}

func (s *Server) nuonuoToken(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "not implemented", http.StatusNotImplemented)
}
