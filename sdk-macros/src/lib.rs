//! Procedural macros of the mero SDK. Use them through `mero_sdk::app`.
//!
//! - `#[app::state]` binds each field of the state struct to a root collection
//!   and describes the struct in the ABI.
//! - `#[app::logic]` turns the public methods of one impl block into WASM
//!   exports with JSON arguments and results, and into the native method
//!   table `mero_sdk::testing` uses.
//! - `#[app::event]` makes an enum emittable and describes it in the ABI.
//! - `#[app::init]` marks the constructor inside `#[app::logic]`.
//!
//! Every macro writes its part of the ABI as a JSON fragment into a WASM custom
//! section; `cargo mero build` assembles the fragments. These macros generate
//! code only: they must not read files or the environment.

#![warn(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{
    Attribute, Fields, FnArg, ImplItem, ItemEnum, ItemImpl, ItemStruct, Pat, Path, ReturnType,
    Token, Type, Visibility, parse_macro_input,
};

use mero_abi::abi::{EventAbi, FieldAbi, Fragment, MethodAbi, Mutability, ParamAbi, StateAbi};

/// Marks the app's state struct. Optional: `#[app::state(emits = Event)]`.
#[proc_macro_attribute]
pub fn state(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = parse_macro_input!(attr as StateArgs);
    let item = parse_macro_input!(item as ItemStruct);
    expand_state(args, item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Marks the impl block whose public methods become the app's methods.
#[proc_macro_attribute]
pub fn logic(_attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = parse_macro_input!(item as ItemImpl);
    expand_logic(item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Marks an enum as the app's events. Variants may name a handler method that
/// receiving nodes run: `#[handler(on_inserted)] Inserted { key: String }`.
#[proc_macro_attribute]
pub fn event(_attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = parse_macro_input!(item as ItemEnum);
    expand_event(item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Marks the constructor. Only meaningful inside `#[app::logic]`.
#[proc_macro_attribute]
pub fn init(_attr: TokenStream, item: TokenStream) -> TokenStream {
    let err = syn::Error::new(
        proc_macro2::Span::call_site(),
        "#[app::init] must mark a method inside an #[app::logic] impl block",
    )
    .into_compile_error();
    let item = TokenStream2::from(item);
    quote!(#err #item).into()
}

struct StateArgs {
    emits: Option<Path>,
}

impl Parse for StateArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.is_empty() {
            return Ok(Self { emits: None });
        }
        let key: syn::Ident = input.parse()?;
        if key != "emits" {
            return Err(syn::Error::new(key.span(), "expected `emits = EventType`"));
        }
        input.parse::<Token![=]>()?;
        Ok(Self {
            emits: Some(input.parse()?),
        })
    }
}

/// Renders a type as compact source text for the ABI.
fn type_text(ty: &impl quote::ToTokens) -> String {
    let raw = quote!(#ty).to_string();
    let mut s = raw
        .replace(" < ", "<")
        .replace("< ", "<")
        .replace(" <", "<")
        .replace(" >", ">")
        .replace(" :: ", "::")
        .replace(" ,", ",")
        .replace("& ", "&");
    while s.contains("> >") {
        s = s.replace("> >", ">>");
    }
    s
}

/// The `#[used]` custom-section static carrying one ABI fragment.
fn fragment_static(fragment: &Fragment) -> TokenStream2 {
    let mut bytes = serde_json::to_vec(fragment).expect("ABI fragments serialize");
    bytes.push(b'\n');
    let len = bytes.len();
    let lit = syn::LitByteStr::new(&bytes, proc_macro2::Span::call_site());
    let section = mero_abi::ABI_FRAGMENT_SECTION;
    quote! {
        const _: () = {
            #[cfg(target_arch = "wasm32")]
            #[unsafe(link_section = #section)]
            #[used]
            static __MERO_ABI_FRAGMENT: [u8; #len] = *#lit;
        };
    }
}

fn expand_state(args: StateArgs, item: ItemStruct) -> syn::Result<TokenStream2> {
    let name = &item.ident;
    let Fields::Named(fields) = &item.fields else {
        return Err(syn::Error::new(
            item.span(),
            "#[app::state] needs a struct with named fields",
        ));
    };
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new(
            item.generics.span(),
            "#[app::state] structs cannot be generic",
        ));
    }
    let idents: Vec<_> = fields
        .named
        .iter()
        .map(|f| f.ident.clone().unwrap())
        .collect();
    let names: Vec<_> = idents.iter().map(|i| i.to_string()).collect();
    let tys: Vec<_> = fields.named.iter().map(|f| f.ty.clone()).collect();
    let fragment = fragment_static(&Fragment::State(StateAbi {
        name: name.to_string(),
        fields: names
            .iter()
            .zip(&tys)
            .map(|(n, t)| FieldAbi {
                name: n.clone(),
                ty: type_text(t),
            })
            .collect(),
        emits: args.emits.as_ref().map(type_text),
    }));
    let emits_check = args.emits.map(|e| {
        quote! {
            const _: fn() = || {
                fn must_be_an_app_event<E: ::mero_sdk::__private::AppEvent>() {}
                must_be_an_app_event::<#e>();
            };
        }
    });
    Ok(quote! {
        #item

        impl ::mero_sdk::__private::AppState for #name {
            fn __load() -> Self {
                Self {
                    #( #idents: <#tys as ::mero_sdk::__private::StateField>::__load(#names), )*
                }
            }
            fn __store(self) {
                #( <#tys as ::mero_sdk::__private::StateField>::__store_init(self.#idents, #names); )*
            }
        }

        #emits_check
        #fragment
    })
}

fn is_attr(attr: &Attribute, name: &str) -> bool {
    attr.path().segments.last().is_some_and(|s| s.ident == name)
}

fn returns_result(ret: &ReturnType) -> bool {
    match ret {
        ReturnType::Type(_, ty) => match &**ty {
            Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
            _ => false,
        },
        ReturnType::Default => false,
    }
}

/// The success type of a return type, as ABI text.
fn success_type(ret: &ReturnType, fallible: bool) -> String {
    match ret {
        ReturnType::Default => "()".into(),
        ReturnType::Type(_, ty) => {
            if fallible
                && let Type::Path(p) = &**ty
                && let Some(seg) = p.path.segments.last()
                && let syn::PathArguments::AngleBracketed(args) = &seg.arguments
                && let Some(syn::GenericArgument::Type(t)) = args.args.first()
            {
                return type_text(t);
            }
            type_text(ty)
        }
    }
}

struct Param {
    ident: syn::Ident,
    owned: Type,
    pass: TokenStream2,
    written: Type,
}

fn param(arg: &syn::PatType) -> syn::Result<Param> {
    let Pat::Ident(pat) = &*arg.pat else {
        return Err(syn::Error::new(
            arg.pat.span(),
            "app method parameters must be plain names: they are the keys of the JSON arguments",
        ));
    };
    let ident = pat.ident.clone();
    let (owned, pass): (Type, TokenStream2) = match &*arg.ty {
        Type::Reference(r) => {
            let owned: Type = match &*r.elem {
                Type::Path(p) if p.path.is_ident("str") => syn::parse_quote!(::std::string::String),
                Type::Slice(s) => {
                    let e = &s.elem;
                    syn::parse_quote!(::std::vec::Vec<#e>)
                }
                other => other.clone(),
            };
            let pass = if r.mutability.is_some() {
                quote!(&mut __args.#ident)
            } else {
                quote!(&__args.#ident)
            };
            (owned, pass)
        }
        other => (other.clone(), quote!(__args.#ident)),
    };
    Ok(Param {
        ident,
        owned,
        pass,
        written: (*arg.ty).clone(),
    })
}

fn expand_logic(mut item: ItemImpl) -> syn::Result<TokenStream2> {
    if item.trait_.is_some() {
        return Err(syn::Error::new(
            item.span(),
            "#[app::logic] goes on an inherent impl block, not a trait impl",
        ));
    }
    let self_ty = item.self_ty.clone();
    let mut wrappers = Vec::new();
    let mut exports = Vec::new();
    let mut entries = Vec::new();
    let mut abi = Vec::new();

    for impl_item in &mut item.items {
        let ImplItem::Fn(f) = impl_item else { continue };
        let before = f.attrs.len();
        f.attrs.retain(|a| !is_attr(a, "init"));
        let is_init = f.attrs.len() != before;
        if !is_init && !matches!(f.vis, Visibility::Public(_)) {
            continue;
        }
        let sig = &f.sig;
        let name = &sig.ident;
        let name_str = name.to_string();
        if name_str.starts_with("__") {
            return Err(syn::Error::new(
                name.span(),
                "method names starting with `__` are reserved",
            ));
        }
        if !sig.generics.params.is_empty() || sig.asyncness.is_some() {
            return Err(syn::Error::new(
                sig.span(),
                "app methods cannot be generic or async",
            ));
        }
        let mut inputs = sig.inputs.iter();
        let receiver = match sig.inputs.first() {
            Some(FnArg::Receiver(r)) => {
                inputs.next();
                if r.reference.is_none() {
                    return Err(syn::Error::new(
                        r.span(),
                        "app methods take &self (view) or &mut self (mutating), not self",
                    ));
                }
                Some(r.mutability.is_some())
            }
            _ => None,
        };
        if is_init && receiver.is_some() {
            return Err(syn::Error::new(
                sig.span(),
                "#[app::init] is a constructor: it takes no self and returns Self",
            ));
        }
        if !is_init && receiver.is_none() {
            return Err(syn::Error::new(
                sig.span(),
                "public methods of #[app::logic] become app methods and need &self or &mut self; make helpers private",
            ));
        }
        let params = inputs
            .map(|a| match a {
                FnArg::Typed(t) => param(t),
                FnArg::Receiver(r) => Err(syn::Error::new(r.span(), "unexpected receiver")),
            })
            .collect::<syn::Result<Vec<_>>>()?;
        let fallible = returns_result(&sig.output);
        let mutating = is_init || receiver == Some(true);

        let wrapper = format_ident!("__mero_call_{}", name);
        let fields = params.iter().map(|p| {
            let (i, t) = (&p.ident, &p.owned);
            quote!(#i: #t)
        });
        let pass: Vec<_> = params.iter().map(|p| &p.pass).collect();
        let body = if is_init {
            let build = if fallible {
                quote!(::mero_sdk::__private::init_result(Self::#name(#(#pass),*))?)
            } else {
                quote!(Self::#name(#(#pass),*))
            };
            quote! {
                let __new: Self = #build;
                <Self as ::mero_sdk::__private::AppState>::__store(__new);
                ::mero_sdk::__private::output(())
            }
        } else {
            let binding = if mutating {
                quote!(let mut __state)
            } else {
                quote!(let __state)
            };
            let out = if fallible {
                quote!(::mero_sdk::__private::output_result(__ret))
            } else {
                quote!(::mero_sdk::__private::output(__ret))
            };
            quote! {
                #binding = <Self as ::mero_sdk::__private::AppState>::__load();
                let __ret = __state.#name(#(#pass),*);
                #out
            }
        };
        wrappers.push(quote! {
            #[doc(hidden)]
            #[allow(clippy::needless_borrow, clippy::unnecessary_mut_passed)]
            pub fn #wrapper() -> ::mero_sdk::__private::CallResult {
                #[derive(::mero_sdk::__private::serde::Deserialize)]
                #[serde(crate = "::mero_sdk::__private::serde", deny_unknown_fields)]
                #[allow(non_camel_case_types)]
                struct __MeroArgs { #(#fields),* }
                #[allow(unused_mut, unused_variables)]
                let mut __args: __MeroArgs = ::mero_sdk::__private::args(#name_str)?;
                #body
            }
        });
        exports.push(quote! {
            #[cfg(target_arch = "wasm32")]
            #[unsafe(no_mangle)]
            pub extern "C" fn #name() {
                ::mero_sdk::__private::run(<#self_ty>::#wrapper)
            }
        });
        entries.push(quote! {
            ::mero_sdk::__private::MethodEntry {
                name: #name_str,
                mutating: #mutating,
                init: #is_init,
                call: <#self_ty>::#wrapper,
            }
        });
        abi.push(MethodAbi {
            name: name_str,
            mutability: if mutating {
                Mutability::Mutating
            } else {
                Mutability::View
            },
            init: is_init,
            params: params
                .iter()
                .map(|p| ParamAbi {
                    name: p.ident.to_string(),
                    ty: type_text(&p.written),
                })
                .collect(),
            returns: if is_init {
                "()".into()
            } else {
                success_type(&sig.output, fallible)
            },
            fallible,
        });
    }
    if !abi.iter().any(|m| m.init) {
        return Err(syn::Error::new(
            item.self_ty.span(),
            "#[app::logic] needs one constructor marked #[app::init] (e.g. `#[app::init] pub fn init() -> Self`)",
        ));
    }
    let fragment = fragment_static(&Fragment::Methods { methods: abi });
    Ok(quote! {
        #item

        impl #self_ty {
            #(#wrappers)*
        }

        impl ::mero_sdk::__private::AppLogic for #self_ty {
            fn __methods() -> &'static [::mero_sdk::__private::MethodEntry] {
                const METHODS: &[::mero_sdk::__private::MethodEntry] = &[#(#entries),*];
                METHODS
            }
        }

        const _: () = {
            #(#exports)*
        };

        #fragment
    })
}

fn expand_event(mut item: ItemEnum) -> syn::Result<TokenStream2> {
    let name = &item.ident;
    let mut kinds = Vec::new();
    let mut handlers = Vec::new();
    let mut abi = Vec::new();
    for v in &mut item.variants {
        let mut handler = None;
        let mut kept = Vec::new();
        for a in v.attrs.drain(..) {
            if is_attr(&a, "handler") {
                let method: syn::Ident = a.parse_args()?;
                handler = Some(method.to_string());
            } else {
                kept.push(a);
            }
        }
        v.attrs = kept;
        let vid = &v.ident;
        let vname = vid.to_string();
        let pat = match &v.fields {
            Fields::Named(_) => quote!(Self::#vid { .. }),
            Fields::Unnamed(_) => quote!(Self::#vid(..)),
            Fields::Unit => quote!(Self::#vid),
        };
        kinds.push(quote!(#pat => #vname));
        let h = match &handler {
            Some(h) => quote!(::core::option::Option::Some(#h)),
            None => quote!(::core::option::Option::None),
        };
        handlers.push(quote!(#pat => #h));
        abi.push(EventAbi {
            name: vname,
            fields: v
                .fields
                .iter()
                .enumerate()
                .map(|(i, f)| FieldAbi {
                    name: f
                        .ident
                        .as_ref()
                        .map_or_else(|| i.to_string(), ToString::to_string),
                    ty: type_text(&f.ty),
                })
                .collect(),
            handler,
        });
    }
    let fragment = fragment_static(&Fragment::Events {
        name: name.to_string(),
        events: abi,
    });
    let (impl_g, ty_g, where_g) = item.generics.split_for_impl();
    let arms_empty = item.variants.is_empty();
    let (kind_body, handler_body) = if arms_empty {
        (quote!(match *self {}), quote!(match *self {}))
    } else {
        (
            quote!(match self { #(#kinds,)* }),
            quote!(match self { #(#handlers,)* }),
        )
    };
    Ok(quote! {
        #[derive(::mero_sdk::__private::serde::Serialize)]
        #[serde(crate = "::mero_sdk::__private::serde", tag = "kind", content = "data")]
        #item

        impl #impl_g ::mero_sdk::__private::AppEvent for #name #ty_g #where_g {
            fn __kind(&self) -> &'static str { #kind_body }
            fn __handler(&self) -> ::core::option::Option<&'static str> { #handler_body }
            fn __data(&self) -> ::std::vec::Vec<u8> {
                let mut v = ::mero_sdk::__private::serde_json::to_value(self)
                    .expect("event payloads serialize to JSON");
                let data = v.get_mut("data").map(::core::mem::take).unwrap_or_default();
                ::mero_sdk::__private::serde_json::to_vec(&data).expect("JSON values serialize")
            }
        }

        #fragment
    })
}
