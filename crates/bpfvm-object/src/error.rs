//! Typed errors of the loader: each names what is wrong and where.

/// Why an object cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectError {
    /// The bytes are not a well-formed ELF file.
    #[error("malformed ELF: {0}")]
    Malformed(String),
    /// A well-formed ELF file for something else.
    #[error("not a BPF object: {0}")]
    NotBpf(String),
    /// A relocation that cannot be applied.
    #[error("relocation at offset {offset:#x} of section `{section}`: {problem}")]
    Relocation {
        /// Section the relocation patches.
        section: String,
        /// Byte offset in that section.
        offset: u64,
        /// What is wrong.
        problem: String,
    },
    /// A reference to a symbol nothing defines.
    #[error(
        "undefined symbol `{symbol}` referenced at offset {offset:#x} of section `{section}`{hint}"
    )]
    UndefinedSymbol {
        /// Symbol name.
        symbol: String,
        /// Section of the reference.
        section: String,
        /// Byte offset of the reference.
        offset: u64,
        /// What would make it resolvable.
        hint: String,
    },
    /// The `.BTF` or `.BTF.ext` section is invalid.
    #[error("BTF: {0}")]
    Btf(String),
    /// A map definition that cannot be understood.
    #[error("map `{map}`: {problem}")]
    Map {
        /// Map name.
        map: String,
        /// What is wrong.
        problem: String,
    },
    /// A program that cannot be assembled (bad call target, instruction cut in half).
    #[error("program `{program}` (section `{section}`): {problem}")]
    Program {
        /// Program or function name.
        program: String,
        /// Its section.
        section: String,
        /// What is wrong.
        problem: String,
    },
    /// The object has no program.
    #[error("no programs: the object has no function in a program section")]
    NoPrograms,
    /// An `extern` that cannot be resolved.
    #[error("extern `{name}`: {problem}")]
    Extern {
        /// Extern name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// A CO-RE relocation that cannot be resolved.
    #[error("CO-RE relocation at pc {pc} of `{program}`: {problem}")]
    Core {
        /// Program name.
        program: String,
        /// Instruction index in the linked program.
        pc: usize,
        /// What is wrong.
        problem: String,
    },
    /// The object exceeds a [`crate::Limits`] bound.
    #[error("limit exceeded: {what} is {value}, the limit is {limit}")]
    Limit {
        /// What was counted.
        what: &'static str,
        /// The object's value.
        value: u64,
        /// The limit.
        limit: u64,
    },
}

impl From<object::read::Error> for ObjectError {
    fn from(e: object::read::Error) -> Self {
        ObjectError::Malformed(e.to_string())
    }
}
