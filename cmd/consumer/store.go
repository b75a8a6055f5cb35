package main

import "github.com/fapiaohub/invoicer/store"

// storeDB names the order store type the wiring plugs into the pipeline.
type storeDB = store.DB
