//! Finding and loading the ONNX Runtime shared library, and running models.
//!
//! `ort` is built with `load-dynamic`: nothing is linked or downloaded at build time, and the
//! library is opened the first time a learned matcher is set up (never for the classical
//! matcher). Where it comes from, first match wins:
//! 1. the config field `runtime.onnxruntime_library`;
//! 2. the environment variable `ORT_DYLIB_PATH`;
//! 3. next to the `aquamvs` executable (`libonnxruntime.so` or `libonnxruntime.so.1.*` on
//!    Linux, `libonnxruntime.dylib` on macOS, `onnxruntime.dll` on Windows).
//!
//! A missing file, a file that is not ONNX Runtime or a version older than 1.[`ort::MINOR_VERSION`]
//! is an [`OnnxError::Runtime`] that says how to get the library ([`INSTALL_HINT`]); nothing
//! panics. One process loads one library: asking for a second, different one is an error.
//!
//! Models run on the CPU unless `runtime.device` is `cuda`: then every session gets ONNX
//! Runtime's CUDA execution provider, which only the GPU build of the library
//! (`onnxruntime-gpu`) has. [`check_device`] says so in one line ([`CUDA_HINT`]) before a run
//! starts (`aquamvs check` and the run's own validation call it), and a session whose CUDA
//! provider cannot start (no GPU, no CUDA libraries) is an error, never a silent CPU run.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;

use crate::config::Device;
use ort::session::Session;
use ort::value::{DynValue, Tensor, TensorElementType, ValueType};

/// How to get the library, appended to every runtime error.
pub const INSTALL_HINT: &str = "install it with `python3 -m venv .venv && .venv/bin/pip install \
     'onnxruntime==1.31.*'`; the library is then \
     .venv/lib/python3.*/site-packages/onnxruntime/capi/libonnxruntime.so.1.31.* (on macOS \
     libonnxruntime.1.31.*.dylib, on Windows onnxruntime.dll): set `runtime.onnxruntime_library` \
     to that file, export ORT_DYLIB_PATH=<file>, or copy it next to the aquamvs executable";

/// What to do when `runtime.device: cuda` cannot be honoured.
pub const CUDA_HINT: &str = "install ONNX Runtime's GPU build (`.venv/bin/pip install \
     'onnxruntime-gpu==1.31.*'`, which needs an NVIDIA driver, CUDA 12 and cuDNN 9) and point \
     `runtime.onnxruntime_library` or ORT_DYLIB_PATH at its \
     onnxruntime/capi/libonnxruntime.so.1.31.*, or set `runtime.device: cpu`";

/// Errors of the learned matchers' runtime and models.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum OnnxError {
    /// The ONNX Runtime library could not be found or loaded.
    #[error("ONNX Runtime: {message}; {INSTALL_HINT}")]
    Runtime {
        /// What went wrong.
        message: String,
    },
    /// `runtime.device: cuda`, but the loaded library cannot run models on the GPU.
    #[error("runtime.device: {message}; {CUDA_HINT}")]
    Device {
        /// What is missing.
        message: String,
    },
    /// A model file is missing or could not be loaded.
    #[error("model {} (`{field}`): {message}", path.display())]
    Model {
        /// The config field that names the model.
        field: &'static str,
        /// The model file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A model's inputs or outputs are not a supported signature.
    #[error(
        "model {} (`{field}`) is not a supported {expected} model: {message} \
         (see docs/learned-matchers.md for the supported signatures)",
        path.display()
    )]
    Signature {
        /// The config field that names the model.
        field: &'static str,
        /// The model file.
        path: PathBuf,
        /// Which kind of model was expected.
        expected: &'static str,
        /// What does not fit.
        message: String,
    },
    /// Inference failed or returned tensors of unexpected shapes.
    #[error("model {}: {message}", path.display())]
    Inference {
        /// The model file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Where the library path came from (for messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LibrarySource {
    /// `runtime.onnxruntime_library`.
    Config,
    /// The `ORT_DYLIB_PATH` environment variable.
    Environment,
    /// Next to the executable.
    Executable,
}

impl LibrarySource {
    fn describe(self) -> &'static str {
        match self {
            LibrarySource::Config => "runtime.onnxruntime_library",
            LibrarySource::Environment => "ORT_DYLIB_PATH",
            LibrarySource::Executable => "next to the aquamvs executable",
        }
    }
}

/// The library file to load: `configured`, else `ORT_DYLIB_PATH` (when set and not empty),
/// else a library next to the executable. Fails when none is given and none lies next to
/// the executable.
pub fn resolve_library(configured: Option<&Path>) -> Result<(PathBuf, LibrarySource), OnnxError> {
    if let Some(p) = configured {
        return Ok((p.to_path_buf(), LibrarySource::Config));
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return Ok((PathBuf::from(p), LibrarySource::Environment));
    }
    let exe_dir = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf));
    if let Some(found) = exe_dir.as_deref().and_then(library_in) {
        return Ok((found, LibrarySource::Executable));
    }
    Err(OnnxError::Runtime {
        message: format!(
            "the shared library was not found: `runtime.onnxruntime_library` is not set, \
             ORT_DYLIB_PATH is not set, and there is none next to the executable{}",
            exe_dir.map(|d| format!(" ({})", d.display())).unwrap_or_default()
        ),
    })
}

/// An ONNX Runtime library in `dir`, if any: the plain name, else the last versioned name in
/// name order.
pub(crate) fn library_in(dir: &Path) -> Option<PathBuf> {
    let plain = dir.join(format!(
        "{}onnxruntime{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    if plain.is_file() {
        return Some(plain);
    }
    let prefix = format!("{}onnxruntime", std::env::consts::DLL_PREFIX);
    let mut versioned: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(&format!("{prefix}{}.", std::env::consts::DLL_SUFFIX))
                    || (n.starts_with(&format!("{prefix}.")) && n.ends_with(".dylib"))
            })
        })
        .collect();
    versioned.sort();
    versioned.pop()
}

/// The library loaded by this process and its environment.
static LOADED: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

/// The ONNX Runtime environment, loading the library (see the module docs) on first use.
pub fn environment(configured: Option<&Path>) -> Result<Environment, OnnxError> {
    let (path, source) = resolve_library(configured)?;
    let mut loaded = LOADED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !path.is_file() {
        return Err(OnnxError::Runtime {
            message: format!("{} (from {}) does not exist", path.display(), source.describe()),
        });
    }
    if let Some((loaded_path, env)) = loaded.as_ref() {
        if same_file(loaded_path, &path) {
            return Ok(env.clone());
        }
        return Err(OnnxError::Runtime {
            message: format!(
                "this process already loaded {}; it cannot also load {} ({})",
                loaded_path.display(),
                path.display(),
                source.describe()
            ),
        });
    }
    let builder = ort::init_from(&path)
        .map_err(|e| OnnxError::Runtime { message: load_error_message(&e, &path, source) })?;
    let env = builder.with_name("aquamvs").build().map_err(|e| OnnxError::Runtime {
        message: format!("{} loaded but could not start: {e}", path.display()),
    })?;
    tracing::info!("ONNX Runtime loaded from {} ({})", path.display(), source.describe());
    *loaded = Some((path, env.clone()));
    Ok(env)
}

/// Checks that the library can run models on `device`: for [`Device::Cuda`] it loads the
/// library (see [`environment`]) and asks whether it was built with the CUDA execution
/// provider. [`Device::Cpu`] needs nothing.
pub fn check_device(configured: Option<&Path>, device: Device) -> Result<(), OnnxError> {
    if device == Device::Cpu {
        return Ok(());
    }
    environment(configured)?;
    let (path, _) = resolve_library(configured)?;
    match <ort::ep::CUDA as ort::ep::ExecutionProvider>::is_available() {
        Ok(true) => Ok(()),
        Ok(false) => Err(OnnxError::Device {
            message: format!(
                "`cuda` needs ONNX Runtime's CUDA execution provider, but {} is a CPU-only build",
                path.display()
            ),
        }),
        Err(e) => Err(OnnxError::Device {
            message: format!(
                "`cuda`: {} could not list its execution providers: {e}",
                path.display()
            ),
        }),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// A message for a failed library load, naming the file and where its path came from.
pub fn load_error_message(e: &ort::LoadDynamicError, path: &Path, source: LibrarySource) -> String {
    let from = source.describe();
    match e {
        ort::LoadDynamicError::Dlopen { error, .. } => format!(
            "{} (from {from}) could not be loaded as a shared library ({error}); is it the \
             ONNX Runtime library for this platform?",
            path.display()
        ),
        ort::LoadDynamicError::MissingApi { .. } => format!(
            "{} (from {from}) is a shared library but not ONNX Runtime (it has no \
             OrtGetApiBase)",
            path.display()
        ),
        ort::LoadDynamicError::InvalidVersionString => {
            format!("{} (from {from}) reports a malformed version", path.display())
        }
        ort::LoadDynamicError::BadVersion { version_str, .. } => format!(
            "{} (from {from}) is ONNX Runtime {version_str}, but aquamvs needs 1.{} or newer",
            path.display(),
            ort::MINOR_VERSION
        ),
    }
}

/// A tensor returned by a model.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TensorData {
    /// 32-bit floats.
    F32(Vec<f32>),
    /// 64-bit integers.
    I64(Vec<i64>),
}

/// An output tensor: shape and values.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Output {
    pub shape: Vec<i64>,
    pub data: TensorData,
}

/// An input tensor: name, shape and values (f32).
pub(crate) struct Input<'a> {
    pub name: &'a str,
    pub shape: Vec<i64>,
    pub data: Vec<f32>,
}

/// One loaded model: its session (runs are serialised; ONNX Runtime parallelises inside a
/// run) and its signature.
pub(crate) struct Model {
    path: PathBuf,
    field: &'static str,
    session: Mutex<Session>,
    /// Input name, element type, shape (−1 = dynamic).
    pub inputs: Vec<(String, Option<TensorElementType>, Vec<i64>)>,
    /// Output names.
    pub outputs: Vec<String>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("path", &self.path).field("inputs", &self.inputs).finish()
    }
}

impl Model {
    /// Loads the model at `path` (named by config field `field`); `threads` caps ONNX
    /// Runtime's intra-op threads (`None`: its default, every core); `device` says where it
    /// runs (see the module docs).
    pub fn load(
        env: &Environment,
        path: &Path,
        field: &'static str,
        threads: Option<usize>,
        device: Device,
    ) -> Result<Self, OnnxError> {
        let model_err =
            |message: String| OnnxError::Model { field, path: path.to_path_buf(), message };
        if !path.is_file() {
            return Err(model_err(
                "does not exist; see docs/learned-matchers.md for how to export or obtain it"
                    .into(),
            ));
        }
        let mut builder = Session::builder(env)
            .map_err(|e| model_err(format!("ONNX Runtime could not start a session: {e}")))?;
        if let Some(n) = threads {
            builder = builder
                .with_intra_threads(n)
                .map_err(|e| model_err(format!("ONNX Runtime refused {n} threads: {e}")))?;
        }
        if device == Device::Cuda {
            use ort::ep::ExecutionProvider;
            let cuda = ort::ep::CUDA::default();
            if !ort::ep::CUDA::is_available().unwrap_or(false) {
                return Err(OnnxError::Device {
                    message: "`cuda` needs ONNX Runtime's CUDA execution provider, but the loaded \
                              library is a CPU-only build"
                        .into(),
                });
            }
            cuda.register(&mut builder).map_err(|e| OnnxError::Device {
                message: format!(
                    "ONNX Runtime's CUDA execution provider could not start for {} ({e}); is an \
                     NVIDIA GPU with its driver present?",
                    path.display()
                ),
            })?;
        }
        let session = builder
            .commit_from_file(path)
            .map_err(|e| model_err(format!("ONNX Runtime could not load it: {e}")))?;
        let inputs = session
            .inputs()
            .iter()
            .map(|o| {
                let (ty, shape) = match o.dtype() {
                    ValueType::Tensor { ty, shape, .. } => (Some(*ty), shape.to_vec()),
                    _ => (None, Vec::new()),
                };
                (o.name().to_string(), ty, shape)
            })
            .collect();
        let outputs = session.outputs().iter().map(|o| o.name().to_string()).collect();
        Ok(Self { path: path.to_path_buf(), field, session: Mutex::new(session), inputs, outputs })
    }

    /// Input names, in order.
    pub fn input_names(&self) -> Vec<&str> {
        self.inputs.iter().map(|i| i.0.as_str()).collect()
    }

    /// A signature error for this model.
    pub fn signature_error(&self, expected: &'static str, message: String) -> OnnxError {
        OnnxError::Signature { field: self.field, path: self.path.clone(), expected, message }
    }

    /// An inference error for this model.
    pub fn inference_error(&self, message: impl Into<String>) -> OnnxError {
        OnnxError::Inference { path: self.path.clone(), message: message.into() }
    }

    /// Checks that every name of `names` is an output.
    pub fn require_outputs(&self, expected: &'static str, names: &[&str]) -> Result<(), OnnxError> {
        let missing: Vec<&str> =
            names.iter().copied().filter(|n| !self.outputs.iter().any(|o| o == n)).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(self.signature_error(
                expected,
                format!("outputs {:?} are missing (it has {:?})", missing, self.outputs),
            ))
        }
    }

    /// Runs the model on `inputs` and returns the outputs named `wanted`, in that order.
    pub fn run(&self, inputs: Vec<Input<'_>>, wanted: &[&str]) -> Result<Vec<Output>, OnnxError> {
        let mut values: Vec<(std::borrow::Cow<'_, str>, ort::session::SessionInputValue<'_>)> =
            Vec::with_capacity(inputs.len());
        for input in inputs {
            let tensor = Tensor::from_array((input.shape.clone(), input.data))
                .map_err(|e| self.inference_error(format!("input `{}`: {e}", input.name)))?;
            values.push((input.name.into(), tensor.into()));
        }
        let mut session = self.session.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let outputs = session.run(values).map_err(|e| self.inference_error(e.to_string()))?;
        wanted
            .iter()
            .map(|name| {
                let value = outputs
                    .get(*name)
                    .ok_or_else(|| self.inference_error(format!("no output `{name}`")))?;
                self.extract(name, value)
            })
            .collect()
    }

    fn extract(&self, name: &str, value: &DynValue) -> Result<Output, OnnxError> {
        let bad = |e: ort::Error| self.inference_error(format!("output `{name}`: {e}"));
        match value.dtype() {
            ValueType::Tensor { ty: TensorElementType::Float32, .. } => {
                let (shape, data) = value.try_extract_tensor::<f32>().map_err(bad)?;
                Ok(Output { shape: shape.to_vec(), data: TensorData::F32(data.to_vec()) })
            }
            ValueType::Tensor { ty: TensorElementType::Int64, .. } => {
                let (shape, data) = value.try_extract_tensor::<i64>().map_err(bad)?;
                Ok(Output { shape: shape.to_vec(), data: TensorData::I64(data.to_vec()) })
            }
            other => Err(self.inference_error(format!(
                "output `{name}` is {other:?}; expected a float32 or int64 tensor"
            ))),
        }
    }
}

impl Output {
    /// The values as f32 (int64 values converted), checking the rank.
    pub fn f32s(&self, model: &Model, name: &str, rank: usize) -> Result<Vec<f32>, OnnxError> {
        self.check_rank(model, name, rank)?;
        Ok(match &self.data {
            TensorData::F32(v) => v.clone(),
            TensorData::I64(v) => v.iter().map(|&x| x as f32).collect(),
        })
    }

    /// The values as i64, checking the rank; float outputs are an error.
    pub fn i64s(&self, model: &Model, name: &str, rank: usize) -> Result<Vec<i64>, OnnxError> {
        self.check_rank(model, name, rank)?;
        match &self.data {
            TensorData::I64(v) => Ok(v.clone()),
            TensorData::F32(_) => Err(model
                .inference_error(format!("output `{name}` is float32; expected int64 indices"))),
        }
    }

    fn check_rank(&self, model: &Model, name: &str, rank: usize) -> Result<(), OnnxError> {
        if self.shape.len() == rank {
            Ok(())
        } else {
            Err(model.inference_error(format!(
                "output `{name}` has shape {:?}; expected {rank} dimensions",
                self.shape
            )))
        }
    }

    /// Dimension `i` as usize (0 for a negative one, which a computed tensor never has).
    pub fn dim(&self, i: usize) -> usize {
        self.shape.get(i).copied().unwrap_or(0).max(0) as usize
    }
}

/// The inputs of a model as `name [shape]`, for messages.
pub(crate) fn describe_inputs(inputs: &[(String, Option<TensorElementType>, Vec<i64>)]) -> String {
    let parts: Vec<String> = inputs.iter().map(|(n, _, s)| format!("{n} {s:?}")).collect();
    parts.join(", ")
}

/// For tests: the runtime from `ORT_DYLIB_PATH`, or `None` after saying on stderr that `test`
/// is skipped. With `AQUAMVS_REQUIRE_ORT` set (scripts/test sets it), a missing runtime fails.
#[cfg(test)]
pub(crate) fn ort_or_skip(test: &str) -> Option<Environment> {
    let configured = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty());
    let result = match configured {
        Some(_) => environment(None),
        None => Err(OnnxError::Runtime { message: "ORT_DYLIB_PATH is not set".into() }),
    };
    match result {
        Ok(env) => Some(env),
        Err(e) => {
            assert!(
                std::env::var_os("AQUAMVS_REQUIRE_ORT").is_none(),
                "{test}: ONNX Runtime is required (AQUAMVS_REQUIRE_ORT is set): {e}"
            );
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "{test}: skipped, ONNX Runtime is not available (scripts/test installs it): {e}"
                );
            }
            None
        }
    }
}
