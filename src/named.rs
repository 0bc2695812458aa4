//! `named_enum!`: a fieldless enum declared together with the name of each variant.
//!
//! One list of `Variant => "name"` pairs generates the enum, `COUNT`, `ALL` and the name
//! function, so a variant can be neither missing from `ALL` nor nameless. The lists of
//! names other code derives from are declared with it: the scoring validators
//! (`validation::ValidatorName`), the docker operation kinds (`docker::OperationKind`) and
//! the container and compose actions the parser looks subcommands up in.

/// Declares the enum, `pub const COUNT: usize`, `pub const ALL: [Enum; COUNT]` (every
/// variant, in the order declared) and `pub const fn <name>(self) -> &'static str`, with
/// the docs given for `ALL` and the name function.
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
            /// How many variants there are: the length of `ALL`.
            pub const COUNT: usize = [$($name,)+].len();

            $(#[$all_meta])*
            pub const ALL: [$enum; $enum::COUNT] = [$($enum::$variant,)+];

            $(#[$name_fn_meta])*
            pub const fn $name_fn(self) -> &'static str {
                match self {
                    $($enum::$variant => $name,)+
                }
            }
        }
    };
}

pub(crate) use named_enum;
