//! `named_enum!`: a fieldless enum declared together with the name of each variant.
//!
//! The enum, its `ALL` and its name function are generated from one list of
//! `Variant => "name"` pairs, so a variant can be neither missing from `ALL` nor nameless.
//! [`super::OperationKind`], [`super::ContainerAction`] and [`super::ComposeAction`] are
//! declared with it, and the parsers look subcommands up in their `ALL`.

/// Declares the enum, `pub const ALL: &'static [Enum]` (every variant, in the order
/// declared) and `pub fn <name>(self) -> &'static str`, with the docs given for each.
macro_rules! named_enum {
    (
        $(#[$enum_meta:meta])*
        $vis:vis enum $enum:ident {
            $($(#[$variant_meta:meta])* $variant:ident => $name:literal,)+
        }
        $(#[$all_meta:meta])*
        const ALL;
        $(#[$name_fn_meta:meta])*
        fn $name_fn:ident;
    ) => {
        $(#[$enum_meta])*
        $vis enum $enum {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $enum {
            $(#[$all_meta])*
            pub const ALL: &'static [$enum] = &[$($enum::$variant,)+];

            $(#[$name_fn_meta])*
            pub fn $name_fn(self) -> &'static str {
                match self {
                    $($enum::$variant => $name,)+
                }
            }
        }
    };
}

pub(crate) use named_enum;
