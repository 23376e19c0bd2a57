//! The facade's error type.

use std::path::PathBuf;

use bpfvm_abi::MapError;
use bpfvm_runtime::{LoadError, RunError};

/// Why an embedding-API call failed. Every variant names what and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The object file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The ELF object is malformed or asks for something bpfvm cannot resolve.
    #[error("object: {0}")]
    Object(#[from] bpfvm_object::ObjectError),
    /// A map could not be created, filled or accessed.
    #[error("map `{name}`: {source}")]
    Map {
        /// The map.
        name: String,
        /// What failed, with the kernel's errno.
        source: MapError,
    },
    /// A program's bytecode is invalid or names what its type cannot provide.
    #[error("program `{name}`: {reason}")]
    Program {
        /// The program.
        name: String,
        /// Why.
        reason: String,
    },
    /// A program could not be resolved against its maps or helpers.
    #[error("program `{name}`: {source}")]
    Load {
        /// The program.
        name: String,
        /// The load error, with the pc.
        source: LoadError,
    },
    /// No program of that name.
    #[error("no program named `{name}` (the object has: {available})")]
    NoProgram {
        /// The name asked for.
        name: String,
        /// The names there are.
        available: String,
    },
    /// No map of that name.
    #[error("no map named `{name}` (the object has: {available})")]
    NoMap {
        /// The name asked for.
        name: String,
        /// The names there are.
        available: String,
    },
    /// A typed map handle does not fit the map.
    #[error("map `{name}`: {reason}")]
    MapShape {
        /// The map.
        name: String,
        /// What does not fit.
        reason: String,
    },
    /// No global variable of that name, or a value of the wrong size.
    #[error("global `{name}`: {reason}")]
    Global {
        /// The variable.
        name: String,
        /// Why.
        reason: String,
    },
    /// A host kfunc does not match the object's declaration.
    #[error("kfunc `{name}`: {reason}")]
    Kfunc {
        /// The function.
        name: String,
        /// Why.
        reason: String,
    },
    /// A run failed.
    #[error("program `{program}`: {source}")]
    Run {
        /// The program.
        program: String,
        /// The fault or refusal.
        source: RunError,
    },
}

/// A map error with the map's name.
pub(crate) fn map_err(name: &str) -> impl FnOnce(MapError) -> Error + '_ {
    move |source| Error::Map {
        name: name.to_string(),
        source,
    }
}
