package jumdata

import (
	"context"
	"fmt"
	"net/url"

	"github.com/fapiaohub/invoicer/providers"
)

// ScanApp is the app a person scans the face authentication QR code with
// (auth/qrcode's app parameter).
type ScanApp string

// The scanning apps.
const (
	// ScanAppIIT is the individual income tax app (个税App), "1".
	ScanAppIIT ScanApp = "1"
	// ScanAppETax is the tax bureau's app (税务App), "2".
	ScanAppETax ScanApp = "2"
)

// QRCode is a face authentication QR code from auth/qrcode.
type QRCode struct {
	// AuthID identifies the authentication; pass it to FaceAuthResult.
	AuthID string
	// ImageBase64 is the QR code image, base64; ImageURL its address. Either
	// may be empty.
	ImageBase64, ImageURL string
}

// APIError is a jumdata answer other than success to one of the operator
// calls (FaceAuthQRCode, FaceAuthResult, InvoicePage), or the failure to get
// an answer.
type APIError struct {
	// Method is the endpoint ("auth/result").
	Method string
	// Code is jumdata's code ("311") or, without an answer, "transport",
	// "timeout", "unreadable", "not_sent" or "http_<status>".
	Code string
	// Message is jumdata's message or a description of the failure.
	Message string
	// Class is what the answer means, from the classification table (as for
	// a Query).
	Class providers.Class
	// Err is the underlying error of a failed call; nil for an answer.
	Err error
}

// Error implements error.
func (e *APIError) Error() string {
	return fmt.Sprintf("jumdata %s: %s: %s", e.Method, e.Code, e.Message)
}

// Unwrap returns Err.
func (e *APIError) Unwrap() error { return e.Err }

// apiError turns a reply that is not a success into an *APIError.
func (c *Client) apiError(r reply) *APIError {
	out := c.fail(r, true)
	return &APIError{Method: r.method, Code: out.Code, Message: out.Message, Class: out.Class, Err: out.Err}
}

// call makes an operator call and decodes a 200's data into v (nil: no
// data wanted).
func (c *Client) call(ctx context.Context, method string, params url.Values, v any) (string, error) {
	r := c.post(ctx, method, params)
	if !r.is("200") {
		return "", c.apiError(r)
	}
	if v == nil {
		return r.env.Msg, nil
	}
	if err := decodeData(r.env, v); err != nil {
		return "", c.apiError(reply{method: method, row: rowUnreadable, code: rowUnreadable, err: err})
	}
	return r.env.Msg, nil
}

// FaceAuthQRCode asks for a face authentication QR code (auth/qrcode) for
// the seller's login. A person scans it with app; then FaceAuthResult
// completes the authentication. This is how an operator clears the 311 and
// 312 answers (ActionRequired) that park a seller's invoices.
//
// Errors are *APIError. Safe for concurrent use.
func (c *Client) FaceAuthQRCode(ctx context.Context, app ScanApp) (QRCode, error) {
	var d qrcodeResult
	if _, err := c.call(ctx, epAuthQRCode, url.Values{"app": {string(app)}}, &d); err != nil {
		return QRCode{}, err
	}
	if d.AuthID == "" {
		return QRCode{}, c.apiError(reply{method: epAuthQRCode, row: rowUnreadable, code: rowUnreadable,
			err: fmt.Errorf("jumdata %s: 200 without an authId", epAuthQRCode)})
	}
	return QRCode{AuthID: string(d.AuthID), ImageBase64: string(d.ImageBase64), ImageURL: string(d.ImageURL)}, nil
}

// FaceAuthResult asks whether the authentication authID passed
// (auth/result). It returns nil once it has; an *APIError with Code "311"
// while the person has not scanned yet (ask again), "312" when the QR code
// expired (start over with FaceAuthQRCode), or any other failure.
//
// Safe for concurrent use.
func (c *Client) FaceAuthResult(ctx context.Context, authID string, app ScanApp) error {
	_, err := c.call(ctx, epAuthResult, url.Values{"authId": {authID}, "app": {string(app)}}, nil)
	return err
}

// InvoicePage returns the address of the tax bureau's download page for an
// issued invoice (red-confirmation/page, the document's "发票交付"): fphm is
// the invoice number, kprq its issue time as jumdata gave it. Submit and
// Query never call it (jumdata bills calls, and the invoice is complete
// without it).
//
// Errors are *APIError. Safe for concurrent use.
func (c *Client) InvoicePage(ctx context.Context, fphm, kprq string) (string, error) {
	var d pageResult
	if _, err := c.call(ctx, epDownloadPage, url.Values{"fphm": {fphm}, "kprq": {kprq}}, &d); err != nil {
		return "", err
	}
	return string(d.URL), nil
}
