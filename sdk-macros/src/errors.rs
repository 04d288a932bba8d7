//! `#[app::error]`, and how methods' errors and events reach the wire.

use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::spanned::Spanned;
use syn::{Fields, ItemEnum, ReturnType, Type};

use mero_abi::abi::{ErrorAbi, ErrorVariantAbi, Fragment};

use super::{fields_abi, fragment_static, is_attr, type_text};

/// Turns a method's `Err` into the call error: an `#[app::error]` enum
/// typed, anything else through `app::Error`. Which applies is decided by
/// method resolution on the concrete error type (`__private::ErrorTag`).
pub(crate) fn error_conversion() -> TokenStream2 {
    quote! {
        |__e| {
            #[allow(unused_imports)]
            use ::mero_sdk::__private::{TypedError as _, UntypedError as _};
            (&::mero_sdk::__private::ErrorTag::new(__e)).__call_error()
        }
    }
}

/// The error type of `Result<T, E>` as ABI text, unless it is `app::Error`
/// (untyped). Whether `E` is an `#[app::error]` enum is settled when the
/// ABI is assembled (`AppAbi::from_fragments`).
pub(crate) fn error_type(ret: &ReturnType) -> Option<String> {
    let ReturnType::Type(_, ty) = ret else {
        return None;
    };
    let Type::Path(p) = &**ty else { return None };
    let seg = p.path.segments.last()?;
    let syn::PathArguments::AngleBracketed(args) = &seg.arguments else {
        return None;
    };
    let Some(syn::GenericArgument::Type(e)) = args.args.iter().nth(1) else {
        return None;
    };
    let text = type_text(e);
    (!text.ends_with("app::Error")).then_some(text)
}

/// `Serialize` and, when every field can be read back (no borrowed
/// fields, no lifetimes), `Deserialize`, as `{"kind": variant, "data":
/// fields}`: the shape of events and errors on the wire, which tests and
/// clients decode.
pub(crate) fn serde_derives(item: &ItemEnum) -> TokenStream2 {
    let borrows = item.generics.lifetimes().next().is_some()
        || item.variants.iter().flat_map(|v| v.fields.iter()).any(|f| {
            let ty = &f.ty;
            quote!(#ty).to_string().contains('&')
        });
    let de = (!borrows).then(|| quote!(::mero_sdk::__private::serde::Deserialize));
    quote! {
        #[derive(::mero_sdk::__private::serde::Serialize, #de)]
        #[serde(crate = "::mero_sdk::__private::serde", tag = "kind", content = "data")]
    }
}

pub(crate) fn expand_error(mut item: ItemEnum) -> syn::Result<TokenStream2> {
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new(
            item.generics.span(),
            "#[app::error] enums cannot be generic: the ABI lists their variants' field types",
        ));
    }
    let name = &item.ident;
    let mut variants = Vec::new();
    let mut kinds = Vec::new();
    let mut codes = Vec::new();
    let mut seen: Vec<(u32, String)> = Vec::new();
    for v in &mut item.variants {
        let mut explicit = None;
        let mut kept = Vec::new();
        for a in v.attrs.drain(..) {
            if is_attr(&a, "code") {
                let lit: syn::LitInt = a.parse_args()?;
                let n: u32 = lit.base10_parse()?;
                if n == 0 {
                    return Err(syn::Error::new(
                        lit.span(),
                        "code 0 is what untyped app::Error reports; pick another",
                    ));
                }
                explicit = Some(n);
            } else {
                kept.push(a);
            }
        }
        v.attrs = kept;
        let vname = v.ident.to_string();
        let code = explicit.unwrap_or_else(|| mero_abi::error::derived_code(&vname));
        if let Some((_, other)) = seen.iter().find(|(c, _)| *c == code) {
            return Err(syn::Error::new(
                v.ident.span(),
                format!(
                    "`{vname}` has code {code}, as `{other}` does: give one of them another #[code(n)]"
                ),
            ));
        }
        seen.push((code, vname.clone()));
        let vid = &v.ident;
        let pat = match &v.fields {
            Fields::Named(_) => quote!(Self::#vid { .. }),
            Fields::Unnamed(_) => quote!(Self::#vid(..)),
            Fields::Unit => quote!(Self::#vid),
        };
        kinds.push(quote!(#pat => #vname));
        codes.push(quote!(#pat => #code));
        variants.push(ErrorVariantAbi {
            name: vname,
            code,
            fields: fields_abi(&v.fields),
        });
    }
    let fragment = fragment_static(&Fragment::Errors(ErrorAbi {
        name: name.to_string(),
        variants,
    }));
    let derives = serde_derives(&item);
    let (kind_body, code_body) = if item.variants.is_empty() {
        (quote!(match *self {}), quote!(match *self {}))
    } else {
        (
            quote!(match self { #(#kinds,)* }),
            quote!(match self { #(#codes,)* }),
        )
    };
    Ok(quote! {
        #derives
        #item

        impl ::mero_sdk::AppError for #name {
            fn __kind(&self) -> &'static str { #kind_body }
            fn __code(&self) -> u32 { #code_body }
            fn __data(&self) -> ::mero_sdk::__private::serde_json::Value {
                ::mero_sdk::__private::error_data(self)
            }
            fn __message(&self) -> ::std::string::String {
                #[allow(unused_imports)]
                use ::mero_sdk::__private::{DisplayMessage as _, NameMessage as _};
                (&::mero_sdk::__private::Message(self))
                    .__message(<Self as ::mero_sdk::AppError>::__kind(self))
            }
        }

        #fragment
    })
}
