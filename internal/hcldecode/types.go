// Copyright IBM Corp. 2014, 2025
// SPDX-License-Identifier: MPL-2.0
//
// Copied unchanged (but for the package name) from github.com/hashicorp/hcl/v2
// v2.25.0, gohcl/types.go; see doc.go.

package hcldecode

import (
	"reflect"

	"github.com/hashicorp/hcl/v2"
)

var victimExpr hcl.Expression
var victimBody hcl.Body

var exprType = reflect.TypeOf(&victimExpr).Elem()
var bodyType = reflect.TypeOf(&victimBody).Elem()

var attrType = reflect.TypeOf((*hcl.Attribute)(nil))
var attrsType = reflect.TypeOf(hcl.Attributes(nil))
