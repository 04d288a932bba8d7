//! Procedural macros of the mero SDK. Use them through `mero_sdk::app`.
//!
//! - `#[app::state]` binds each field of the state struct to a root collection
//!   and describes the struct in the ABI.
//! - `#[app::logic]` turns the public methods of one impl block into WASM
//!   exports with JSON arguments and results, and into the native method
//!   table `mero_sdk::testing` uses.
//! - `#[app::event]` makes an enum emittable and describes it in the ABI.
//! - `#[app::init]` marks the constructor inside `#[app::logic]`;
//!   `#[app::view]` and `#[app::private]` mark views and methods only the
//!   node and event handlers call; `#[app::xcall]` marks methods other
//!   contexts may call.
//! - `#[app::error]` makes an enum an app's typed errors: each variant is a
//!   `kind` with a stable `code` and its fields as `data`, listed in the ABI.
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

mod errors;
mod marks;

use errors::{error_conversion, error_type, expand_error, serde_derives};
use marks::Marks;

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

/// Marks the state migration inside `#[app::logic]`:
/// `#[app::migrate] pub fn migrate() -> Self`. An upgrade to this app
/// from one whose state schema differs runs it once, in the upgrade delta.
#[proc_macro_attribute]
pub fn migrate(_attr: TokenStream, item: TokenStream) -> TokenStream {
    let err = syn::Error::new(
        proc_macro2::Span::call_site(),
        "#[app::migrate] must mark a function inside an #[app::logic] impl block",
    )
    .into_compile_error();
    let item = TokenStream2::from(item);
    quote!(#err #item).into()
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

/// Marks a `&self` method inside `#[app::logic]` as a view. Every `&self`
/// method is one; the mark says so explicitly, and a `&mut self` method
/// carrying it does not compile.
#[proc_macro_attribute]
pub fn view(_attr: TokenStream, item: TokenStream) -> TokenStream {
    outside_logic("view", item)
}

/// Marks a method inside `#[app::logic]` that only the node itself and
/// event handlers call: exported and listed in the ABI as private, refused
/// to every client `execute` or `query`.
#[proc_macro_attribute]
pub fn private(_attr: TokenStream, item: TokenStream) -> TokenStream {
    outside_logic("private", item)
}

/// Marks a method inside `#[app::logic]` that other contexts on a member's
/// node may call (`mero_sdk::xcall::call` / `view`). A method without it is
/// refused to them: a context's app opts in, method by method, to being
/// called by apps it did not choose.
#[proc_macro_attribute]
pub fn xcall(_attr: TokenStream, item: TokenStream) -> TokenStream {
    outside_logic("xcall", item)
}

fn outside_logic(name: &str, item: TokenStream) -> TokenStream {
    let err = syn::Error::new(
        proc_macro2::Span::call_site(),
        format!("#[app::{name}] must mark a method inside an #[app::logic] impl block"),
    )
    .into_compile_error();
    let item = TokenStream2::from(item);
    quote!(#err #item).into()
}

/// Marks an enum as typed app errors. A method returning `Result<T, E>` (or
/// `app::Result<T, E>`) with this `E` fails with kind = the variant's name,
/// code = `#[code(n)]` or one derived from the name
/// (`mero_abi::error::derived_code`), data = its fields, and the enum's
/// `Display` as message if it has one (else the variant's name).
#[proc_macro_attribute]
pub fn error(_attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = parse_macro_input!(item as ItemEnum);
    expand_error(item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

struct StateArgs {
    emits: Option<Path>,
    version: u32,
}

impl Parse for StateArgs {
    /// `emits = EventType` and `version = N`, in any order, comma-separated.
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Self {
            emits: None,
            version: 0,
        };
        while !input.is_empty() {
            let key: syn::Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            if key == "emits" {
                args.emits = Some(input.parse()?);
            } else if key == "version" {
                let n: syn::LitInt = input.parse()?;
                args.version = n.base10_parse()?;
            } else {
                return Err(syn::Error::new(
                    key.span(),
                    "expected `emits = EventType` or `version = N`",
                ));
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
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

/// The fields of a variant as the ABI lists them: by name, or by index
/// for a tuple variant.
fn fields_abi(fields: &Fields) -> Vec<FieldAbi> {
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| FieldAbi {
            name: f
                .ident
                .as_ref()
                .map_or_else(|| i.to_string(), ToString::to_string),
            ty: type_text(&f.ty),
        })
        .collect()
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

/// One ABI fragment as JSON text, for the native test host: it has no
/// custom section to read.
fn fragment_json(fragment: &Fragment) -> String {
    serde_json::to_string(fragment).expect("ABI fragments serialize")
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
    let state_abi = Fragment::State(StateAbi {
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
        version: args.version,
    });
    let fragment = fragment_static(&state_abi);
    let state_json = fragment_json(&state_abi);
    let events_abi = state_events_abi(args.emits.as_ref());
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
            fn __abi_state() -> &'static str {
                #state_json
            }
            #events_abi
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
    let mut migration = None;

    for impl_item in &mut item.items {
        let ImplItem::Fn(f) = impl_item else { continue };
        if f.attrs.iter().any(|a| is_attr(a, "migrate")) {
            if migration.is_some() {
                return Err(syn::Error::new(
                    f.sig.span(),
                    "an app has at most one #[app::migrate] function",
                ));
            }
            f.attrs.retain(|a| !is_attr(a, "migrate"));
            migration = Some(expand_migrate(f, &self_ty)?);
            continue;
        }
        let marks = Marks::take(&mut f.attrs);
        let is_init = marks.init;
        if !marks.exports() && !matches!(f.vis, Visibility::Public(_)) {
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
        marks.check(receiver)?;
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
        let to_call_error = error_conversion();
        let body = if is_init {
            let build = if fallible {
                quote!(Self::#name(#(#pass),*).map_err(#to_call_error)?)
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
                quote!(::mero_sdk::__private::output_result(__ret.map_err(#to_call_error)))
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
            private: marks.private.is_some(),
            xcall: marks.xcall.is_some(),
            error: error_type(&sig.output),
        });
    }
    if !abi.iter().any(|m| m.init) {
        return Err(syn::Error::new(
            item.self_ty.span(),
            "#[app::logic] needs one constructor marked #[app::init] (e.g. `#[app::init] pub fn init() -> Self`)",
        ));
    }
    let methods = Fragment::Methods { methods: abi };
    let abi_json = fragment_json(&methods);
    let fragment = fragment_static(&methods);
    let (migrate_items, migrate_fn) = match migration {
        Some(m) => (m.items, m.entry),
        None => (TokenStream2::new(), TokenStream2::new()),
    };
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
            fn __abi_methods() -> &'static str {
                #abi_json
            }
            #migrate_fn
        }

        #migrate_items

        const _: () = {
            #(#exports)*
        };

        #fragment
    })
}

/// What `#[app::migrate]` adds to the expansion of `#[app::logic]`.
struct Migration {
    /// The wrapper, the export and the ABI fragment.
    items: TokenStream2,
    /// `AppLogic::__migration`, for the native test host.
    entry: TokenStream2,
}

/// `#[app::migrate] fn migrate() -> Self` (or `-> app::Result<Self>`): a
/// constructor of the new state from the old, exported under
/// `MIGRATE_EXPORT` (not an app method: clients cannot call it). Its
/// result is stored like `init`'s.
fn expand_migrate(f: &syn::ImplItemFn, self_ty: &Type) -> syn::Result<Migration> {
    let sig = &f.sig;
    if !sig.inputs.is_empty() || !sig.generics.params.is_empty() || sig.asyncness.is_some() {
        return Err(syn::Error::new(
            sig.span(),
            "#[app::migrate] is a constructor of the new state: `fn migrate() -> Self` (or `-> app::Result<Self>`); read the old state with mero_sdk::migration",
        ));
    }
    let name = &sig.ident;
    let fallible = returns_result(&sig.output);
    let to_call_error = error_conversion();
    let build = if fallible {
        quote!(<#self_ty>::#name().map_err(#to_call_error)?)
    } else {
        quote!(<#self_ty>::#name())
    };
    let export = mero_abi::abi::MIGRATE_EXPORT;
    let export_ident = format_ident!("{}", export);
    let fragment = fragment_static(&Fragment::Migrate(mero_abi::abi::MigrateAbi {
        name: name.to_string(),
        fallible,
    }));
    let items = quote! {
        impl #self_ty {
            #[doc(hidden)]
            pub fn __mero_migrate_wrapper() -> ::mero_sdk::__private::CallResult {
                let __new: #self_ty = #build;
                <#self_ty as ::mero_sdk::__private::AppState>::__store(__new);
                ::mero_sdk::__private::output(())
            }
        }
        const _: () = {
            #[cfg(target_arch = "wasm32")]
            #[unsafe(export_name = #export)]
            pub extern "C" fn #export_ident() {
                ::mero_sdk::__private::run(<#self_ty>::__mero_migrate_wrapper)
            }
        };
        #fragment
    };
    let entry = quote! {
        fn __migration() -> ::core::option::Option<::mero_sdk::__private::MethodFn> {
            ::core::option::Option::Some(<#self_ty>::__mero_migrate_wrapper)
        }
    };
    Ok(Migration { items, entry })
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
            fields: fields_abi(&v.fields),
            handler,
        });
    }
    let events = Fragment::Events {
        name: name.to_string(),
        events: abi,
    };
    let abi_json = fragment_json(&events);
    let fragment = fragment_static(&events);
    let derives = serde_derives(&item);
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
        #derives
        #item

        impl #impl_g ::mero_sdk::__private::AppEvent for #name #ty_g #where_g {
            fn __abi_events() -> &'static str { #abi_json }
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

/// The state's link to its events' ABI, for the native test host (which
/// learns handlers from it).
fn state_events_abi(emits: Option<&Path>) -> Option<TokenStream2> {
    emits.map(|e| {
        quote! {
            fn __abi_events() -> &'static str {
                <#e as ::mero_sdk::__private::AppEvent>::__abi_events()
            }
        }
    })
}
