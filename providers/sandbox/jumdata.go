package sandbox

import "net/http"

// jumdataState is the jumdata side's memory. (To be written.)
type jumdataState struct{}

func newJumdataState() *jumdataState { return &jumdataState{} }

var jumdataSpec = providerSpec{
	name:        "jumdata",
	seller:      func(r *http.Request) string { return r.FormValue("nsrsbh") },
	rateLimited: func(w http.ResponseWriter) { writeJSON(w, http.StatusOK, map[string]any{"code": 609, "msg": "请求过于频繁,请稍候再试"}) },
}

func (s *Server) jumdataMakeout(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "not implemented", http.StatusNotImplemented)
}
