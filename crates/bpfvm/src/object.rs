//! Objects: open an ELF object, configure it (globals, map config, host helpers and
//! kfuncs), load it (maps created and filled, programs resolved), and get programs and
//! maps out of it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bpfvm_abi::{F_RDONLY_PROG, MapSpec, MapType, ProgramType as KernelType};
use bpfvm_btf::{Btf, Kind, TypeId, TypeKind};
use bpfvm_interp::Interpreter;
use bpfvm_isa::Program as Bytecode;
use bpfvm_jit::Jit;
use bpfvm_object::{DataKind, LoadOptions, MapOrigin};
use bpfvm_runtime::maps::{Map, MapConfig, create_map};
use bpfvm_runtime::{
    Context, Engine, FaultKind, Helper, HelperContext, HelperRegistry, LoadedProgram, ProgramType,
    RunOptions,
};

use crate::error::{Error, map_err};

/// The first id given to host kfuncs (far above any vmlinux BTF id of a test kernel, and
/// only meaningful to bpfvm's engines).
const HOST_KFUNC_BASE: u32 = 0x4000_0000;

/// What a kfunc argument or return value is, for checking a host registration against
/// the object's `extern ... __ksym` declaration (its BTF `FUNC_PROTO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KfuncType {
    /// `void` (return values only).
    Void,
    /// An integer or enum of this many bytes.
    Int(u32),
    /// Any pointer.
    Pointer,
}

/// A host function exposed to programs as a kfunc: its name, signature and body.
pub struct Kfunc {
    name: String,
    params: Vec<KfuncType>,
    ret: KfuncType,
    helper: Helper,
}

impl std::fmt::Debug for Kfunc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kfunc")
            .field("name", &self.name)
            .field("params", &self.params)
            .field("ret", &self.ret)
            .finish_non_exhaustive()
    }
}

impl Kfunc {
    /// A kfunc `name(params) -> ret` implemented by `f` (arguments in `r1`–`r5`, pointer
    /// arguments checked through the context's regions).
    pub fn new(
        name: &'static str,
        params: &[KfuncType],
        ret: KfuncType,
        f: impl Fn(&mut HelperContext<'_, '_>, [u64; 5]) -> Result<u64, FaultKind>
        + Send
        + Sync
        + 'static,
    ) -> Kfunc {
        Kfunc {
            name: name.to_string(),
            params: params.to_vec(),
            ret,
            helper: Helper::host(0, name, None, f),
        }
    }
}

/// An object read from an ELF file, not loaded yet: set `.rodata`/`.data` globals, the map
/// configuration, host helpers and kfuncs, then [`OpenObject::load`] it — libbpf's
/// open/load split, as skeletons use it.
#[derive(Debug)]
pub struct OpenObject {
    name: String,
    bytes: Vec<u8>,
    spec: bpfvm_object::Object,
    config: MapConfig,
    helpers: Vec<Helper>,
    kfuncs: Vec<Kfunc>,
    types: BTreeMap<String, KernelType>,
}

impl OpenObject {
    /// Reads and parses the object at `path` (its file stem names internal maps, as in
    /// libbpf).
    pub fn open_file(path: impl AsRef<Path>) -> Result<OpenObject, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        OpenObject::open_bytes(&name, bytes)
    }

    /// Parses an object from memory.
    pub fn open_bytes(name: &str, bytes: Vec<u8>) -> Result<OpenObject, Error> {
        let opts = LoadOptions {
            name: name.to_string(),
            allow_unresolved_externs: true,
            ..LoadOptions::default()
        };
        let spec = bpfvm_object::load(&bytes, &opts)?;
        Ok(OpenObject {
            name: name.to_string(),
            bytes,
            spec,
            config: MapConfig::default(),
            helpers: Vec::new(),
            kfuncs: Vec::new(),
            types: BTreeMap::new(),
        })
    }

    /// The parsed object (programs, map specs, BTF).
    pub fn spec(&self) -> &bpfvm_object::Object {
        &self.spec
    }

    /// Sets how maps are built: per-CPU slots and the memory accountant.
    pub fn with_map_config(mut self, config: MapConfig) -> OpenObject {
        self.config = config;
        self
    }

    /// Adds (or replaces) a helper every program of the object can call.
    pub fn with_helper(mut self, helper: Helper) -> OpenObject {
        self.helpers.push(helper);
        self
    }

    /// Runs program `name` as `program_type` instead of what its section says.
    pub fn with_program_type(mut self, name: &str, program_type: KernelType) -> OpenObject {
        self.types.insert(name.to_string(), program_type);
        self
    }

    /// Exposes a host function as the kfunc the object declares `extern ... __ksym` under
    /// this name; its signature must match the declaration's BTF prototype.
    pub fn with_kfunc(mut self, kfunc: Kfunc) -> Result<OpenObject, Error> {
        check_kfunc(&self.spec, &kfunc)?;
        self.kfuncs.push(kfunc);
        Ok(self)
    }

    /// Sets global variable `name` (in `.rodata`, `.data` or `.bss`, or their `.name`
    /// variants) to `value`, which must have the variable's size: configuration a program
    /// reads as constants, as libbpf skeletons set `rodata->x` before load.
    pub fn set_global(&mut self, name: &str, value: &[u8]) -> Result<&mut OpenObject, Error> {
        let err = |reason: String| Error::Global {
            name: name.to_string(),
            reason,
        };
        let btf = self
            .spec
            .btf
            .as_ref()
            .ok_or_else(|| err("the object has no BTF to find globals in".into()))?;
        let (section, offset, size) = find_global(btf, name)
            .ok_or_else(|| err("no such variable in .rodata, .data or .bss".into()))?;
        if value.len() != size as usize {
            return Err(err(format!(
                "the variable is {size} bytes, the value {}",
                value.len()
            )));
        }
        let map = self
            .spec
            .maps
            .iter_mut()
            .find(|m| matches!(m.origin, MapOrigin::Data(_)) && m.section == section)
            .ok_or_else(|| err(format!("no map for section {section}")))?;
        let data = map
            .initial_data
            .get_or_insert_with(|| vec![0; map.value_size as usize]);
        let range = offset as usize..offset as usize + size as usize;
        data.get_mut(range)
            .ok_or_else(|| err("the variable lies outside its section".into()))?
            .copy_from_slice(value);
        Ok(self)
    }

    /// Sets a global to a plain value (`u32`, an array, a `#[repr(C)]` Pod struct).
    pub fn set_global_value<T: bytemuck::Pod>(
        &mut self,
        name: &str,
        value: &T,
    ) -> Result<&mut OpenObject, Error> {
        self.set_global(name, bytemuck::bytes_of(value))
    }

    /// Creates and fills the maps and resolves every program.
    pub fn load(self) -> Result<Object, Error> {
        // Resolve kfunc calls to the ids the registry will use.
        let mut host_kfuncs = BTreeMap::new();
        for (i, k) in self.kfuncs.iter().enumerate() {
            host_kfuncs.insert(k.name.clone(), HOST_KFUNC_BASE + i as u32);
        }
        let opts = LoadOptions {
            name: self.name.clone(),
            host_kfuncs,
            ..LoadOptions::default()
        };
        let mut linked = bpfvm_object::load(&self.bytes, &opts)?;
        // Carry over the globals set on the open object.
        for (m, open) in linked.maps.iter_mut().zip(&self.spec.maps) {
            m.initial_data = open.initial_data.clone();
        }
        let maps = create_maps(&linked, &self.config)?;
        let handles: Vec<Arc<dyn Map>> = maps.iter().map(|(_, m)| Arc::clone(m)).collect();
        let mut registries: BTreeMap<KernelType, Arc<HelperRegistry>> = BTreeMap::new();
        let mut programs = Vec::new();
        for p in &linked.programs {
            let kernel_type = self.types.get(&p.name).copied().unwrap_or_else(|| {
                KernelType::from_u32(p.kind.prog_type).unwrap_or(KernelType::Unspec)
            });
            let registry = registries
                .entry(kernel_type)
                .or_insert_with(|| {
                    let mut r = HelperRegistry::for_program_type(ProgramType::Kernel(kernel_type));
                    for h in &self.helpers {
                        // Ids are checked when the helper is made; a bad one is skipped.
                        let _ = r.register(h.clone());
                    }
                    for (i, k) in self.kfuncs.iter().enumerate() {
                        r.register_kfunc(HOST_KFUNC_BASE + i as u32, k.helper.clone());
                    }
                    Arc::new(r)
                })
                .clone();
            let bytecode = Bytecode::from_slots(p.insns.clone()).map_err(|e| Error::Program {
                name: p.name.clone(),
                reason: e.to_string(),
            })?;
            let loaded = LoadedProgram::with_maps(
                bytecode,
                ProgramType::Kernel(kernel_type),
                registry,
                handles.clone(),
            )
            .map_err(|source| Error::Load {
                name: p.name.clone(),
                source,
            })?;
            programs.push((p.name.clone(), Arc::new(loaded)));
        }
        let object = Object {
            name: self.name,
            maps,
            programs,
        };
        object.fill_slots(&linked)?;
        Ok(object)
    }
}

/// Finds a global variable: its section name, offset and size.
fn find_global(btf: &Btf, name: &str) -> Option<(String, u32, u32)> {
    for (_, t) in btf.types() {
        let TypeKind::Datasec { vars, .. } = &t.kind else {
            continue;
        };
        let section = btf.string(t.name_off)?.to_string();
        for v in vars {
            if btf.name_of(v.ty) == Some(name) {
                return Some((section, v.offset, v.size));
            }
        }
    }
    None
}

/// The kernel map spec of an object map (`.rodata` and `.kconfig` read-only for programs).
fn abi_spec(m: &bpfvm_object::MapSpec) -> Result<MapSpec, Error> {
    let map_type = MapType::from_u32(m.map_type).ok_or_else(|| Error::Map {
        name: m.name.clone(),
        source: bpfvm_abi::MapError::Invalid(format!("unknown map type {}", m.map_type)),
    })?;
    let mut flags = m.flags;
    if matches!(
        m.origin,
        MapOrigin::Data(DataKind::Rodata) | MapOrigin::Kconfig
    ) {
        flags |= F_RDONLY_PROG;
    }
    let inner = match &m.inner {
        Some(i) => Some(Box::new(abi_spec(i)?)),
        None => None,
    };
    Ok(MapSpec {
        map_type,
        key_size: m.key_size,
        value_size: m.value_size,
        max_entries: m.max_entries,
        flags,
        map_extra: m.map_extra,
        inner,
    })
}

/// A map with its name.
type NamedMap = (String, Arc<dyn Map>);

/// Creates every map of `object` and writes the data sections' initial contents.
fn create_maps(object: &bpfvm_object::Object, config: &MapConfig) -> Result<Vec<NamedMap>, Error> {
    let mut maps = Vec::new();
    for m in &object.maps {
        let spec = abi_spec(m)?;
        let map: Arc<dyn Map> = Arc::from(create_map(&spec, config).map_err(map_err(&m.name))?);
        if let Some(data) = &m.initial_data {
            let mut value = data.clone();
            value.resize(m.value_size as usize, 0);
            // Host writes of read-only-for-programs maps are allowed: fill through the
            // host API.
            map.update(&0u32.to_ne_bytes(), &value, 0)
                .map_err(map_err(&m.name))?;
        }
        maps.push((m.name.clone(), map));
    }
    Ok(maps)
}

/// Checks a host kfunc against the object's declaration of it.
fn check_kfunc(object: &bpfvm_object::Object, k: &Kfunc) -> Result<(), Error> {
    let err = |reason: String| Error::Kfunc {
        name: k.name.clone(),
        reason,
    };
    let btf = object
        .btf
        .as_ref()
        .ok_or_else(|| err("the object has no BTF declaring it".into()))?;
    let func = btf
        .find(Kind::Func, &k.name)
        .ok_or_else(|| err("the object declares no such function".into()))?;
    let Some(TypeKind::Func { proto, .. }) = btf.type_by_id(func).map(|t| &t.kind) else {
        return Err(err("malformed BTF function".into()));
    };
    let Some(TypeKind::FuncProto { ret, params }) = btf.type_by_id(*proto).map(|t| &t.kind) else {
        return Err(err("malformed BTF function prototype".into()));
    };
    let declared: Vec<KfuncType> = params.iter().map(|p| kfunc_type(btf, p.ty)).collect();
    if declared.len() > 5 {
        return Err(err(format!(
            "{} parameters; at most 5 fit r1-r5",
            declared.len()
        )));
    }
    if declared != k.params {
        return Err(err(format!(
            "the object declares parameters {declared:?}, the host registered {:?}",
            k.params
        )));
    }
    let declared_ret = kfunc_type(btf, *ret);
    if declared_ret != k.ret {
        return Err(err(format!(
            "the object declares a {declared_ret:?} return, the host registered {:?}",
            k.ret
        )));
    }
    Ok(())
}

fn kfunc_type(btf: &Btf, id: TypeId) -> KfuncType {
    if id.0 == 0 {
        return KfuncType::Void;
    }
    let id = btf.skip_mods_and_typedefs(id);
    match btf.type_by_id(id).map(|t| t.kind()) {
        Some(Kind::Ptr) => KfuncType::Pointer,
        _ => KfuncType::Int(btf.size_of(id).unwrap_or(0) as u32),
    }
}

/// A loaded object: its maps, created and filled, and its programs, resolved.
#[derive(Debug)]
pub struct Object {
    name: String,
    maps: Vec<NamedMap>,
    programs: Vec<(String, Arc<LoadedProgram>)>,
}

impl Object {
    /// Opens and loads the object at `path` with the default configuration.
    ///
    /// ```no_run
    /// let object = bpfvm::Object::load_file("prog.o")?;
    /// let program = object.program("xdp_lb")?;
    /// # Ok::<(), bpfvm::Error>(())
    /// ```
    pub fn load_file(path: impl AsRef<Path>) -> Result<Object, Error> {
        OpenObject::open_file(path)?.load()
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The program called `name` (its function name), on the interpreter in checked mode.
    pub fn program(&self, name: &str) -> Result<Program, Error> {
        let (n, p) = self
            .programs
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| Error::NoProgram {
                name: name.to_string(),
                available: self.program_names().collect::<Vec<_>>().join(", "),
            })?;
        Ok(Program {
            name: n.clone(),
            loaded: Arc::clone(p),
            engine: Arc::new(Interpreter::new()),
        })
    }

    /// The programs' names.
    pub fn program_names(&self) -> impl Iterator<Item = &str> {
        self.programs.iter().map(|(n, _)| n.as_str())
    }

    /// The map called `name`.
    pub fn map(&self, name: &str) -> Result<MapRef, Error> {
        self.maps
            .iter()
            .find(|(n, _)| n == name)
            .map(|(n, m)| MapRef {
                name: n.clone(),
                map: Arc::clone(m),
            })
            .ok_or_else(|| Error::NoMap {
                name: name.to_string(),
                available: self
                    .maps
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Every map, in the object's order.
    pub fn maps(&self) -> impl Iterator<Item = MapRef> + '_ {
        self.maps.iter().map(|(n, m)| MapRef {
            name: n.clone(),
            map: Arc::clone(m),
        })
    }

    /// Every map's entries (`key -> value`, per-CPU values with all slots back to back),
    /// by name: what `bpftool map dump` shows, and the map part of an
    /// [`bpfvm_object::ObjectRun`] for comparing engines. Maps that cannot be iterated
    /// from the host (ring buffers, queues, program arrays…) are left out.
    pub fn map_contents(&self) -> BTreeMap<String, bpfvm_object::MapContents> {
        let mut out = BTreeMap::new();
        for (name, map) in &self.maps {
            let Ok(keys) = map.keys() else { continue };
            let mut contents = bpfvm_object::MapContents::new();
            for k in keys {
                if let Ok(v) = map.lookup(&k) {
                    contents.insert(k, v);
                }
            }
            out.insert(name.clone(), contents);
        }
        out
    }

    /// Fills statically initialized program arrays and maps of maps.
    fn fill_slots(&self, linked: &bpfvm_object::Object) -> Result<(), Error> {
        for (spec, (name, map)) in linked.maps.iter().zip(&self.maps) {
            for (index, slot) in &spec.initial_slots {
                let r = match slot {
                    bpfvm_object::SlotValue::Program(p) => {
                        let prog = self.program(p)?;
                        crate::typed::set_prog_slot(&**map, *index, prog.loaded)
                    }
                    bpfvm_object::SlotValue::Map(i) => match self.maps.get(*i) {
                        Some((_, inner)) => {
                            crate::typed::set_map_slot(&**map, *index, Arc::clone(inner))
                        }
                        None => Err(bpfvm_abi::MapError::Invalid(format!("no map {i}"))),
                    },
                };
                r.map_err(map_err(name))?;
            }
        }
        Ok(())
    }
}

/// A map of an object, untyped: the runtime's [`Map`] with its name. Convert it into a
/// typed handle ([`crate::HashMap`], [`crate::Array`]…) to read and write it.
#[derive(Debug, Clone)]
pub struct MapRef {
    pub(crate) name: String,
    pub(crate) map: Arc<dyn Map>,
}

impl MapRef {
    /// The map's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The runtime map (host API: byte keys and values).
    pub fn map(&self) -> &Arc<dyn Map> {
        &self.map
    }

    /// Its spec.
    pub fn spec(&self) -> &MapSpec {
        self.map.spec()
    }
}

/// A program of a loaded object with the engine it runs on.
#[derive(Clone)]
pub struct Program {
    pub(crate) name: String,
    pub(crate) loaded: Arc<LoadedProgram>,
    pub(crate) engine: Arc<dyn Engine>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("name", &self.name)
            .field("type", &self.loaded.program_type())
            .field("engine", &self.engine.name())
            .finish()
    }
}

impl Program {
    /// A program from a loaded one (built by the host from bytecode, say), on the
    /// interpreter.
    pub fn from_loaded(name: &str, loaded: Arc<LoadedProgram>) -> Program {
        Program {
            name: name.to_string(),
            loaded,
            engine: Arc::new(Interpreter::new()),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its program type.
    pub fn program_type(&self) -> ProgramType {
        self.loaded.program_type()
    }

    /// The loaded program (for engines and tools).
    pub fn loaded(&self) -> &Arc<LoadedProgram> {
        &self.loaded
    }

    /// The same program on another engine. Until the static verifier lands every engine
    /// runs in checked mode.
    pub fn with_engine(mut self, engine: Arc<dyn Engine>) -> Program {
        self.engine = engine;
        self
    }

    /// The same program on the Cranelift JIT (checked mode until the static verifier
    /// lands), compiled now so that a compilation failure shows here rather than as a
    /// refused run.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use bpfvm::Program;
    /// use bpfvm_isa::Program as Bytecode;
    /// use bpfvm_runtime::{Context, LoadedProgram, ProgramType, RunOptions};
    /// // r0 = *(u32 *)(r1 + 0) * 3 ; exit
    /// let bytes = [
    ///     0x61, 0x10, 0, 0, 0, 0, 0, 0, 0x27, 0, 0, 0, 3, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0,
    /// ];
    /// let loaded = LoadedProgram::new(Bytecode::from_bytes(&bytes)?, ProgramType::Conformance)?;
    /// let prog = Program::from_loaded("triple", Arc::new(loaded)).with_jit()?;
    /// assert_eq!(prog.engine_name(), "jit");
    /// let mut mem = 14u32.to_ne_bytes();
    /// assert_eq!(prog.run(&mut Context::Memory(&mut mem), &RunOptions::new())?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_jit(self) -> Result<Program, Error> {
        let jit = Jit::new();
        jit.compile(&self.loaded).map_err(|e| Error::Program {
            name: self.name.clone(),
            reason: e.to_string(),
        })?;
        Ok(self.with_engine(Arc::new(jit)))
    }

    /// Does the engine's once-per-program work now (the interpreter's pre-decoding, the
    /// JIT's compilation) rather than in the first run.
    pub fn prepare(&self) -> Result<(), Error> {
        self.engine
            .prepare(&self.loaded)
            .map_err(|source| Error::Run {
                program: self.name.clone(),
                source,
            })
    }

    /// The engine's name.
    pub fn engine_name(&self) -> &'static str {
        self.engine.name()
    }

    /// Runs the program once with `ctx`.
    pub fn run(&self, ctx: &mut Context<'_>, opts: &RunOptions) -> Result<u64, Error> {
        self.engine
            .run_context(&self.loaded, ctx, opts)
            .map_err(|source| Error::Run {
                program: self.name.clone(),
                source,
            })
    }
}
