package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// PartitionOf returns the partition of a seller among n, exactly as the
// request stream's subject transform {{partition(n,1)}} computes it
// (FNV-1a 32 of the seller token, modulo n). It is 0 when n < 2.
func PartitionOf(seller string, n int) int {
	if n < 2 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(seller))
	return int(h.Sum32() % uint32(n))
}

// StatusServiceName is the name of the status service as `nats micro ls`
// shows it.
const StatusServiceName = "invoice-status"

// StatusRequest asks for the state of one order, sent as JSON to the status
// subject (<prefix>.status).
type StatusRequest struct {
	// Seller is the seller's tax number.
	Seller string `json:"seller"`
	// OrderNo is the order number.
	OrderNo string `json:"orderNo"`
}

// StatusReply answers a StatusRequest.
type StatusReply struct {
	// Found says whether the consumer has a record of the order.
	Found bool `json:"found"`
	// Order is the record: state, invoices, attempts, last error, times.
	Order *schemas.OrderRecord `json:"order,omitempty"`
	// Result is the result event the order's state stands for, when the
	// order is issued, rejected, failed or waiting for a person to act.
	Result *schemas.Result `json:"result,omitempty"`
}

// StatusConfig configures the status service.
type StatusConfig struct {
	// Subjects gives the prefix: the endpoint listens on <prefix>.status.
	Subjects schemas.Subjects
	// Partitions and Partition say which sellers this instance owns; with
	// partitions every instance receives each request (one queue group per
	// partition) and only the owner of the seller answers.
	Partitions, Partition int
	// Version is the service version reported to `nats micro`.
	Version string
}

// StartStatusService registers the status service (a nats.go micro
// service, so `nats micro ls|info|stats` see it) answering StatusRequests
// from st. It returns once the server knows the endpoint, so a request sent
// after it returns is answered. Stop it with the returned service's Stop.
func StartStatusService(nc *nats.Conn, cfg StatusConfig, st Store) (micro.Service, error) {
	version := cfg.Version
	if version == "" {
		version = "1.0.0"
	}
	svc, err := micro.AddService(nc, micro.Config{
		Name:        StatusServiceName,
		Version:     version,
		Description: "State and invoices of an order, answered by the consumer instance that owns the seller",
		Metadata:    map[string]string{"partition": strconv.Itoa(cfg.Partition), "partitions": strconv.Itoa(cfg.Partitions)},
	})
	if err != nil {
		return nil, fmt.Errorf("status service: %w", err)
	}
	subject := cfg.Subjects.Status()
	group := "invoicer"
	if cfg.Partitions > 1 {
		group = "invoicer-p" + strconv.Itoa(cfg.Partition)
	}
	// Requests are answered one at a time, in the endpoint's subscription:
	// micro reads what the handler did (an error answer, the time taken)
	// once it returns, so it must not answer later from a goroutine.
	handler := micro.HandlerFunc(func(r micro.Request) {
		var req StatusRequest
		if err := json.Unmarshal(r.Data(), &req); err != nil {
			_ = r.Error("400", "status request: want JSON {\"seller\":\"...\",\"orderNo\":\"...\"}: "+err.Error(), nil)
			return
		}
		req.Seller = schemas.NormalizeTaxNumber(req.Seller)
		if req.Seller == "" || req.OrderNo == "" {
			_ = r.Error("400", "status request: seller and orderNo are required", nil)
			return
		}
		if len(req.Seller) > 20 || !schemas.ValidOrderNo(req.OrderNo) {
			// Nothing the order store could hold: no request carries it.
			_ = r.Error("400", "status request: seller is at most 20 characters, orderNo 1 to 20 printable ASCII characters without spaces", nil)
			return
		}
		if cfg.Partitions > 1 && PartitionOf(req.Seller, cfg.Partitions) != cfg.Partition {
			return // another instance owns this seller and answers
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rec, found, err := st.Get(ctx, schemas.OrderKey{Seller: req.Seller, OrderNo: req.OrderNo})
		if errors.Is(err, store.ErrInvalidKey) {
			_ = r.Error("400", "status request: no order can have this seller and order number: "+err.Error(), nil)
			return
		}
		if err != nil {
			_ = r.Error("500", "order store: "+err.Error(), nil)
			return
		}
		reply := StatusReply{Found: found}
		if found {
			reply.Order = &rec
			if rec.State != schemas.StateSubmitting && rec.State != schemas.StateAccepted {
				reply.Result = rec.Result()
			}
		}
		_ = r.RespondJSON(reply)
	})
	if err := svc.AddEndpoint("status", handler, micro.WithEndpointSubject(subject), micro.WithEndpointQueueGroup(group)); err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("status endpoint %s: %w", subject, err)
	}
	// The subscriptions are sent to the server asynchronously: flush, so
	// that a request sent once this returns finds the endpoint instead of
	// "no responders".
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("status service: registering with the server: %w", err)
	}
	return svc, nil
}

// ErrStatusTimeout is returned by RequestStatus when no instance answered.
var ErrStatusTimeout = errors.New("no consumer answered the status request (is one running, and does one own this seller?)")

// StatusError is the error of a status request the service answered with an
// error: Code "400" for a request it cannot read (an order number no
// request may carry, ...), "500" when it could not read the order store.
type StatusError struct {
	Code, Description string
}

func (e *StatusError) Error() string {
	return "status service error " + e.Code + ": " + e.Description
}

// RequestStatus asks the consumer for the state of one order. An error the
// service answers is a *StatusError.
func RequestStatus(ctx context.Context, nc *nats.Conn, subjects schemas.Subjects, req StatusRequest) (*StatusReply, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	msg, err := nc.RequestWithContext(ctx, subjects.Status(), data)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) {
		return nil, ErrStatusTimeout
	}
	if err != nil {
		return nil, fmt.Errorf("status request: %w", err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		return nil, &StatusError{Code: code, Description: msg.Header.Get(micro.ErrorHeader)}
	}
	var reply StatusReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return nil, fmt.Errorf("status reply: %w", err)
	}
	return &reply, nil
}
