package sandbox

import (
	"net/http"
	"strconv"
	"strings"
)

// jumdataState is the jumdata side's memory. (To be written.)
type jumdataState struct{}

func newJumdataState() *jumdataState { return &jumdataState{} }

var jumdataSpec = providerSpec{
	name:   "jumdata",
	seller: func(r *http.Request) string { return r.FormValue("nsrsbh") },
	method: func(r *http.Request) string { return strings.TrimPrefix(r.URL.Path, "/tax/v3/makeout/") },
	answer: func(w http.ResponseWriter, code, message string) {
		n, _ := strconv.Atoi(code)
		writeJSON(w, http.StatusOK, map[string]any{"code": n, "msg": message, "charge": false, "taskNo": ""})
	},
	rateLimited: func(w http.ResponseWriter) {
		writeJSON(w, http.StatusOK, map[string]any{"code": 609, "msg": "请求过于频繁,请稍候再试"})
	},
}

func (s *Server) jumdataMakeout(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "not implemented", http.StatusNotImplemented)
}
