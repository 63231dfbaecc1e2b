//===- MoeAttrs.td - moe attributes ------------------------*- tablegen -*-===//
//
// Initialiser descriptions attached to parameters: how a parameter is drawn
// when it is not loaded from a checkpoint.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_ATTRS_TD
#define MOE_ATTRS_TD

include "MoeDialect.td"

def Moe_NormalInitAttr : Moe_Attr<"NormalInit", "normal"> {
  let summary = "initialise from Normal(mean, std)";
  let description = [{
    Every element is drawn independently from a normal distribution. Hugging
    Face initialises linear and embedding weights this way with
    `std = initializer_range`.

    Example: `#moe.normal<mean = 0.0, std = 0.02>`
  }];
  let parameters = (ins APFloatParameter<"mean">:$mean,
                        APFloatParameter<"standard deviation">:$std);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Moe_ConstantInitAttr : Moe_Attr<"ConstantInit", "constant"> {
  let summary = "initialise every element to one value";
  let description = [{
    Norm weights start at one, biases at zero.

    Example: `#moe.constant<1.0>`
  }];
  let parameters = (ins APFloatParameter<"value">:$value);
  let assemblyFormat = "`<` $value `>`";
}

def Moe_InitializerAttr : AnyAttrOf<[Moe_NormalInitAttr, Moe_ConstantInitAttr]>;

#endif // MOE_ATTRS_TD
