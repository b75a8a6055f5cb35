package sandbox

import (
	"fmt"
	"net/url"
)

// SubmitBlueForm hands a blue-invoice submission's form body to the jumdata
// side, as the handler does once the call is verified, and returns the
// seller and taskId of the task it keeps.
func (s *Server) SubmitBlueForm(body string) (seller, taskID string, err error) {
	p, err := url.ParseQuery(body)
	if err != nil {
		return "", "", err
	}
	rep := s.jdBlueSubmit(p, s.now())
	s.jumdata.mu.Lock()
	defer s.jumdata.mu.Unlock()
	t := s.jumdata.tasks[p.Get("nsrsbh")+"\x00"+p.Get("taskId")]
	if t == nil {
		return "", "", fmt.Errorf("no task kept; the answer was %+v", rep)
	}
	return t.seller, t.taskID, nil
}
