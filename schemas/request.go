package schemas

// SchemaVersion is the version of the request, result and dead-letter
// contracts this package implements.
const SchemaVersion = "1"

// Kind says what an invoice request asks for.
type Kind string

// The request kinds. Each carries exactly one body: Order, RedConfirm or
// Reissue.
const (
	// KindIssue issues a blue (or red) invoice: Nuonuo requestBillingNew, seed 001.
	KindIssue Kind = "issue"
	// KindRedConfirm applies for a red-letter confirmation form for a fully
	// digital invoice: Nuonuo saveInvoiceRedConfirm, seed 002.
	KindRedConfirm Kind = "red_confirm"
	// KindReissue retries an invoice whose issuance failed: Nuonuo reInvoice, seed 000.
	KindReissue Kind = "reissue"
)

// Valid reports whether k is one of the defined kinds.
func (k Kind) Valid() bool {
	return k == KindIssue || k == KindRedConfirm || k == KindReissue
}

// Request is one invoice request, the JSON object published on
// invoice.request.<sellerTaxNum>. It is described by
// invoice-request.schema.json; decode it with Validator.Decode, which checks
// the schema and the domain rules.
type Request struct {
	// SchemaVersion is "1".
	SchemaVersion string `json:"schemaVersion"`
	// Kind selects the body.
	Kind Kind `json:"kind"`
	// SellerTaxNum is the seller's tax number: the routing token of the
	// subject and the scope of OrderNo.
	SellerTaxNum string `json:"sellerTaxNum"`
	// OrderNo is the idempotency key, unique per seller, 1..20 characters.
	OrderNo string `json:"orderNo"`
	// Order is the body of KindIssue, Nuonuo's requestBillingNew order object.
	Order *Order `json:"order,omitempty"`
	// RedConfirm is the body of KindRedConfirm.
	RedConfirm *RedConfirm `json:"redConfirm,omitempty"`
	// Reissue is the body of KindReissue.
	Reissue *Reissue `json:"reissue,omitempty"`
}

// Order is Nuonuo's requestBillingNew order object (seed 001) with the same
// field names. Amount fields are Amounts; every other field is a string, as in
// the provider's API.
type Order struct {
	BuyerName        string `json:"buyerName,omitempty"`
	BuyerTaxNum      string `json:"buyerTaxNum,omitempty"`
	BuyerTel         string `json:"buyerTel,omitempty"`
	BuyerAddress     string `json:"buyerAddress,omitempty"`
	BuyerAccount     string `json:"buyerAccount,omitempty"`
	SalerTaxNum      string `json:"salerTaxNum,omitempty"`
	SalerTel         string `json:"salerTel,omitempty"`
	SalerAddress     string `json:"salerAddress,omitempty"`
	SalerAccount     string `json:"salerAccount,omitempty"`
	OrderNo          string `json:"orderNo,omitempty"`
	InvoiceDate      string `json:"invoiceDate,omitempty"`
	InvoiceCode      string `json:"invoiceCode,omitempty"`
	InvoiceNum       string `json:"invoiceNum,omitempty"`
	RedReason        string `json:"redReason,omitempty"`
	BillInfoNo       string `json:"billInfoNo,omitempty"`
	DepartmentID     string `json:"departmentId,omitempty"`
	ClerkID          string `json:"clerkId,omitempty"`
	Remark           string `json:"remark,omitempty"`
	Checker          string `json:"checker,omitempty"`
	Payee            string `json:"payee,omitempty"`
	Clerk            string `json:"clerk,omitempty"`
	ListFlag         string `json:"listFlag,omitempty"`
	ListName         string `json:"listName,omitempty"`
	PushMode         string `json:"pushMode,omitempty"`
	BuyerPhone       string `json:"buyerPhone,omitempty"`
	Email            string `json:"email,omitempty"`
	InvoiceType      string `json:"invoiceType,omitempty"`
	InvoiceLine      string `json:"invoiceLine,omitempty"`
	SpecificFactor   string `json:"specificFactor,omitempty"`
	ProxyInvoiceFlag string `json:"proxyInvoiceFlag,omitempty"`
	CallBackURL      string `json:"callBackUrl,omitempty"`
	ExtensionNumber  string `json:"extensionNumber,omitempty"`
	TerminalNumber   string `json:"terminalNumber,omitempty"`
	MachineCode      string `json:"machineCode,omitempty"`
	VehicleFlag      string `json:"vehicleFlag,omitempty"`
	HiddenBmbbbh     string `json:"hiddenBmbbbh,omitempty"`
	NextInvoiceCode  string `json:"nextInvoiceCode,omitempty"`
	NextInvoiceNum   string `json:"nextInvoiceNum,omitempty"`
	InvoiceNumEnd    string `json:"invoiceNumEnd,omitempty"`
	SurveyAnswerType string `json:"surveyAnswerType,omitempty"`

	InvoiceDetail     []InvoiceLine      `json:"invoiceDetail"`
	VehicleInfo       *VehicleInfo       `json:"vehicleInfo,omitempty"`
	SecondHandCarInfo *SecondHandCarInfo `json:"secondHandCarInfo,omitempty"`
}

// IsRed reports whether the order issues a red (negative) invoice.
func (o *Order) IsRed() bool { return o.InvoiceType == InvoiceTypeRed }

// Invoice types (Order.InvoiceType).
const (
	InvoiceTypeBlue = "1"
	InvoiceTypeRed  = "2"
)

// Invoice line properties (InvoiceLine.InvoiceLineProperty).
const (
	LineNormal     = "0"
	LineDiscount   = "1"
	LineDiscounted = "2"
)

// InvoiceLine is one line of Order.InvoiceDetail.
type InvoiceLine struct {
	GoodsName           string `json:"goodsName,omitempty"`
	GoodsCode           string `json:"goodsCode,omitempty"`
	SelfCode            string `json:"selfCode,omitempty"`
	WithTaxFlag         string `json:"withTaxFlag,omitempty"`
	Price               Amount `json:"price,omitzero"`
	Num                 Amount `json:"num,omitzero"`
	Unit                string `json:"unit,omitempty"`
	SpecType            string `json:"specType,omitempty"`
	Tax                 Amount `json:"tax,omitzero"`
	TaxRate             Amount `json:"taxRate,omitzero"`
	TaxExcludedAmount   Amount `json:"taxExcludedAmount,omitzero"`
	TaxIncludedAmount   Amount `json:"taxIncludedAmount,omitzero"`
	InvoiceLineProperty string `json:"invoiceLineProperty,omitempty"`
	FavouredPolicyFlag  string `json:"favouredPolicyFlag,omitempty"`
	FavouredPolicyName  string `json:"favouredPolicyName,omitempty"`
	Deduction           Amount `json:"deduction,omitzero"`
	ZeroRateFlag        string `json:"zeroRateFlag,omitempty"`
}

// Property returns the line property, "0" (normal) when not given.
func (l *InvoiceLine) Property() string {
	if l.InvoiceLineProperty == "" {
		return LineNormal
	}
	return l.InvoiceLineProperty
}

// VehicleInfo is the motor-vehicle block of an order (invoiceLine j).
type VehicleInfo struct {
	VehicleType      string `json:"vehicleType,omitempty"`
	BrandModel       string `json:"brandModel,omitempty"`
	ProductOrigin    string `json:"productOrigin,omitempty"`
	Certificate      string `json:"certificate,omitempty"`
	ImportCerNum     string `json:"importCerNum,omitempty"`
	InsOddNum        string `json:"insOddNum,omitempty"`
	EngineNum        string `json:"engineNum,omitempty"`
	VehicleCode      string `json:"vehicleCode,omitempty"`
	IntactCerNum     string `json:"intactCerNum,omitempty"`
	Tonnage          string `json:"tonnage,omitempty"`
	MaxCapacity      string `json:"maxCapacity,omitempty"`
	IDNumOrgCode     string `json:"idNumOrgCode,omitempty"`
	ManufacturerName string `json:"manufacturerName,omitempty"`
	TaxOfficeName    string `json:"taxOfficeName,omitempty"`
	TaxOfficeCode    string `json:"taxOfficeCode,omitempty"`
}

// SecondHandCarInfo is the used-car block of an order (invoiceLine u).
type SecondHandCarInfo struct {
	OrganizeType          string `json:"organizeType,omitempty"`
	VehicleType           string `json:"vehicleType,omitempty"`
	BrandModel            string `json:"brandModel,omitempty"`
	VehicleCode           string `json:"vehicleCode,omitempty"`
	IntactCerNum          string `json:"intactCerNum,omitempty"`
	LicenseNumber         string `json:"licenseNumber,omitempty"`
	RegisterCertNo        string `json:"registerCertNo,omitempty"`
	VehicleManagementName string `json:"vehicleManagementName,omitempty"`
	SellerName            string `json:"sellerName,omitempty"`
	SellerTaxnum          string `json:"sellerTaxnum,omitempty"`
	SellerAddress         string `json:"sellerAddress,omitempty"`
	SellerPhone           string `json:"sellerPhone,omitempty"`
}

// RedConfirm holds Nuonuo's saveInvoiceRedConfirm fields (seed 002): an
// application for a red-letter confirmation form for a fully digital invoice.
//
// BlueInvoiceTime is this project's one extension to the seed's fields: the
// issue time of the blue invoice ("yyyy-MM-dd HH:mm:ss"), which jumdata's
// red-invoice/submit requires (lzkprq) and Nuonuo does not.
type RedConfirm struct {
	BillID                string           `json:"billId,omitempty"`
	BlueInvoiceLine       string           `json:"blueInvoiceLine,omitempty"`
	ApplySource           string           `json:"applySource,omitempty"`
	BlueInvoiceNumber     string           `json:"blueInvoiceNumber,omitempty"`
	BlueInvoiceCode       string           `json:"blueInvoiceCode,omitempty"`
	BlueElecInvoiceNumber string           `json:"blueElecInvoiceNumber,omitempty"`
	BillTime              string           `json:"billTime,omitempty"`
	SellerTaxNo           string           `json:"sellerTaxNo,omitempty"`
	SellerName            string           `json:"sellerName,omitempty"`
	DepartmentID          string           `json:"departmentId,omitempty"`
	ClerkID               string           `json:"clerkId,omitempty"`
	BuyerTaxNo            string           `json:"buyerTaxNo,omitempty"`
	BuyerName             string           `json:"buyerName,omitempty"`
	VatUsage              string           `json:"vatUsage,omitempty"`
	SaleTaxUsage          string           `json:"saleTaxUsage,omitempty"`
	AccountStatus         string           `json:"accountStatus,omitempty"`
	RedReason             string           `json:"redReason,omitempty"`
	ExtensionNumber       string           `json:"extensionNumber,omitempty"`
	AutoInvoice           string           `json:"autoInvoice,omitempty"`
	OrderNo               string           `json:"orderNo,omitempty"`
	Phone                 string           `json:"phone,omitempty"`
	Email                 string           `json:"email,omitempty"`
	CallbackURL           string           `json:"callbackUrl,omitempty"`
	Detail                []RedConfirmLine `json:"detail,omitempty"`
	BlueInvoiceTime       string           `json:"blueInvoiceTime,omitempty"`
}

// BlueNumber returns the number of the blue invoice being reversed: the
// fully digital number when given, else the VAT invoice number.
func (r *RedConfirm) BlueNumber() string {
	if r.BlueElecInvoiceNumber != "" {
		return r.BlueElecInvoiceNumber
	}
	return r.BlueInvoiceNumber
}

// RedConfirmLine is one line of a partial red confirmation (RedConfirm.Detail).
type RedConfirmLine struct {
	BlueDetailIndex    string `json:"blueDetailIndex,omitempty"`
	GoodsName          string `json:"goodsName,omitempty"`
	Unit               string `json:"unit,omitempty"`
	SpecType           string `json:"specType,omitempty"`
	Num                Amount `json:"num,omitzero"`
	TaxExcludedPrice   Amount `json:"taxExcludedPrice,omitzero"`
	TaxExcludedAmount  Amount `json:"taxExcludedAmount,omitzero"`
	TaxAmount          Amount `json:"taxAmount,omitzero"`
	TaxRate            Amount `json:"taxRate,omitzero"`
	GoodsCode          string `json:"goodsCode,omitempty"`
	FavouredPolicyFlag string `json:"favouredPolicyFlag,omitempty"`
}

// Reissue holds Nuonuo's reInvoice fields (seed 000): retry an invoice whose
// issuance failed, by serial number (fpqqlsh) or order number (orderno).
type Reissue struct {
	Fpqqlsh         string `json:"fpqqlsh,omitempty"`
	OrderNo         string `json:"orderno,omitempty"`
	NextInvoiceCode string `json:"nextInvoiceCode,omitempty"`
	InvoiceNumStart string `json:"invoiceNumStart,omitempty"`
	InvoiceNumEnd   string `json:"invoiceNumEnd,omitempty"`
}
