//! A throwaway PostgreSQL cluster for tests (feature `test-support`).
//!
//! [`PostgresCluster::start`] runs `initdb` and `pg_ctl start` in a temporary
//! directory, on a free port of 127.0.0.1, with the socket directory inside
//! the temporary directory. As root it runs the server as the `postgres`
//! user (`runuser -u postgres --`), since PostgreSQL refuses to run as root.
//! Dropping the cluster stops the server (`pg_ctl stop -m immediate`) and
//! removes the directory, also while a failing test unwinds.
//!
//! The server runs with PostgreSQL's durable defaults (`fsync`,
//! `synchronous_commit`, `full_page_writes` on), as a production server
//! must: [`PostgresStorage::connect`](crate::PostgresStorage::connect)
//! refuses a server that may lose commits.
//! [`PostgresCluster::start_with_settings`] starts one with other settings,
//! e.g. to show that refusal.
//!
//! Binaries come from `$SHARDKEEP_PG_BIN`, else the newest
//! `/usr/lib/postgresql/<version>/bin` (Debian's `postgresql-15` package),
//! else `PATH`; a missing binary is an error naming it.

use std::ffi::OsStr;
use std::io;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The role that owns the schema and runs migrations.
pub const OWNER_ROLE: &str = "shardkeep_owner";
/// The least-privileged role the service connects as.
pub const SERVICE_ROLE: &str = "shardkeep_service";

/// A running PostgreSQL cluster in a temporary directory.
#[derive(Debug)]
pub struct PostgresCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    run_as_postgres: bool,
    /// `-c name=value` server options beyond the defaults.
    settings: String,
}

/// One database of a [`PostgresCluster`], owned by [`OWNER_ROLE`], with
/// migrations applied and [`SERVICE_ROLE`] granted its privileges.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    /// The database name.
    pub name: String,
    /// URL connecting as the owner role.
    pub owner_url: String,
    /// URL connecting as the service role.
    pub service_url: String,
}

impl PostgresCluster {
    /// Initialises and starts a cluster with PostgreSQL's durable defaults,
    /// and creates the owner and service roles.
    ///
    /// # Errors
    /// An [`io::Error`] naming the missing binary or the failed command
    /// (with its output).
    pub fn start() -> io::Result<Self> {
        Self::start_with_settings(&[])
    }

    /// As [`start`](Self::start), with server settings (`-c name=value`)
    /// changed, e.g. `[("fsync", "off")]`. Names and values are limited to
    /// ASCII letters, digits, `_` and `.` (they pass through `pg_ctl`'s
    /// shell).
    ///
    /// # Errors
    /// As [`start`](Self::start); [`io::ErrorKind::InvalidInput`] for a
    /// name or value with another character.
    pub fn start_with_settings(settings: &[(&str, &str)]) -> io::Result<Self> {
        let mut options = String::new();
        for (name, value) in settings {
            let plain = |text: &str| {
                !text.is_empty()
                    && text
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
            };
            if !plain(name) || !plain(value) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("unsupported server setting {name:?} = {value:?}"),
                ));
            }
            options.push_str(&format!(" -c {name}={value}"));
        }
        let bin = find_bin_dir()?;
        let run_as_postgres = running_as_root()?;
        let dir = tempfile::Builder::new().prefix("shardkeep-pg-").tempdir()?;
        if run_as_postgres {
            let (uid, gid) = postgres_user_ids()?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        let mut cluster = Self {
            dir,
            bin,
            port: 0,
            run_as_postgres,
            settings: options,
        };
        cluster.server_command(
            "initdb",
            [
                OsStr::new("-D"),
                cluster.data_dir().as_os_str(),
                OsStr::new("-U"),
                OsStr::new("postgres"),
                OsStr::new("--auth=trust"),
                OsStr::new("-E"),
                OsStr::new("UTF8"),
            ],
        )?;
        // Another process may take the free port between our probe and the
        // server's bind; try a few ports.
        let mut last_error = None;
        for _ in 0..5 {
            cluster.port = free_port()?;
            match cluster.pg_ctl_start() {
                Ok(()) => {
                    last_error = None;
                    break;
                }
                Err(error) => last_error = Some(error),
            }
        }
        if let Some(error) = last_error {
            return Err(error);
        }
        for role in [OWNER_ROLE, SERVICE_ROLE] {
            cluster.psql("postgres", &format!("CREATE ROLE {role} LOGIN"))?;
        }
        Ok(cluster)
    }

    /// Stops the server (fast shutdown: open sessions are ended), e.g. to
    /// see how storage behaves with the database down. Dropping the cluster
    /// afterwards is fine.
    ///
    /// # Errors
    /// An [`io::Error`] carrying `pg_ctl`'s output when it fails.
    pub fn stop(&self) -> io::Result<()> {
        self.pg_ctl_stop("fast")
    }

    /// The server's TCP port on 127.0.0.1.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL connecting to `database` as `role`.
    #[must_use]
    pub fn url(&self, role: &str, database: &str) -> String {
        format!("postgres://{role}@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a database owned by [`OWNER_ROLE`], migrates it as the owner
    /// and grants [`SERVICE_ROLE`] its privileges.
    ///
    /// # Errors
    /// An [`io::Error`] when `psql` fails; migration errors are returned as
    /// [`io::ErrorKind::Other`] with the storage error's text.
    pub async fn create_database(&self, name: &str) -> io::Result<TestDatabase> {
        self.psql(
            "postgres",
            &format!("CREATE DATABASE {name} OWNER {OWNER_ROLE}"),
        )?;
        let database = TestDatabase {
            name: name.to_owned(),
            owner_url: self.url(OWNER_ROLE, name),
            service_url: self.url(SERVICE_ROLE, name),
        };
        crate::PostgresStorage::migrate(&database.owner_url)
            .await
            .map_err(io::Error::other)?;
        crate::PostgresStorage::grant_service_role(&database.owner_url, SERVICE_ROLE)
            .await
            .map_err(io::Error::other)?;
        Ok(database)
    }

    /// Runs `sql` in `database` as the superuser with `psql`, stopping at
    /// the first error; returns the unaligned output.
    ///
    /// # Errors
    /// An [`io::Error`] carrying `psql`'s output when the SQL fails.
    pub fn psql(&self, database: &str, sql: &str) -> io::Result<String> {
        self.psql_as("postgres", database, sql)
    }

    /// Runs `sql` in `database` as `role` with `psql`.
    ///
    /// # Errors
    /// An [`io::Error`] carrying `psql`'s output when the SQL fails.
    pub fn psql_as(&self, role: &str, database: &str, sql: &str) -> io::Result<String> {
        let output = Command::new(self.binary("psql")?)
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args(["-p", &self.port.to_string(), "-U", role, "-d", database])
            .args(["-c", sql])
            .output()
            .map_err(|error| io::Error::new(error.kind(), format!("running psql: {error}")))?;
        checked("psql", &output)?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn binary(&self, name: &str) -> io::Result<PathBuf> {
        let path = self.bin.join(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(missing_binary(name))
        }
    }

    fn pg_ctl_start(&self) -> io::Result<()> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {}{}",
            self.port,
            self.socket_dir().display(),
            self.settings
        );
        let log = self.dir.path().join("server.log");
        self.server_command(
            "pg_ctl",
            [
                OsStr::new("-D"),
                self.data_dir().as_os_str(),
                OsStr::new("-l"),
                log.as_os_str(),
                OsStr::new("-w"),
                OsStr::new("-t"),
                OsStr::new("60"),
                OsStr::new("-o"),
                OsStr::new(&options),
                OsStr::new("start"),
            ],
        )
        .map_err(|error| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            io::Error::new(error.kind(), format!("{error}\nserver log:\n{log}"))
        })
    }

    fn pg_ctl_stop(&self, mode: &str) -> io::Result<()> {
        let data_dir = self.data_dir();
        self.server_command(
            "pg_ctl",
            [
                OsStr::new("-D"),
                data_dir.as_os_str(),
                OsStr::new("-m"),
                OsStr::new(mode),
                OsStr::new("-w"),
                OsStr::new("stop"),
            ],
        )
    }

    /// Runs a server binary, as the `postgres` user when we are root.
    fn server_command<I, S>(&self, name: &str, args: I) -> io::Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let binary = self.binary(name)?;
        let mut command = if self.run_as_postgres {
            let runuser = find_on_path("runuser")
                .or_else(|_| find_in(&["/usr/sbin/runuser", "/sbin/runuser"], "runuser"))?;
            let mut command = Command::new(runuser);
            command.args(["-u", "postgres", "--"]).arg(&binary);
            command
        } else {
            Command::new(&binary)
        };
        // The server must not inherit our working directory's permissions
        // problems (root's home is unreadable for postgres).
        command.current_dir(self.dir.path()).args(args);
        let output = command
            .output()
            .map_err(|error| io::Error::new(error.kind(), format!("running {name}: {error}")))?;
        checked(name, &output)
    }
}

impl Drop for PostgresCluster {
    fn drop(&mut self) {
        // Best effort while dropping (maybe during a panic, maybe already
        // stopped): an error here has nowhere to go, and the directory is
        // removed next anyway.
        let _ = self.pg_ctl_stop("immediate");
    }
}

fn checked(name: &str, output: &Output) -> io::Result<()> {
    if output.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{name} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )))
}

fn missing_binary(name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "PostgreSQL binary `{name}` not found: install Debian's postgresql-15 package \
             (apt-get install postgresql-15) or set SHARDKEEP_PG_BIN to its bin directory"
        ),
    )
}

/// `$SHARDKEEP_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin` with
/// `initdb`, else the directory of `initdb` on `PATH`.
fn find_bin_dir() -> io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("SHARDKEEP_PG_BIN") {
        let dir = PathBuf::from(dir);
        return if dir.join("initdb").is_file() {
            Ok(dir)
        } else {
            Err(missing_binary("initdb"))
        };
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let initdb = find_on_path("initdb").map_err(|_| missing_binary("initdb"))?;
    let resolved = std::fs::canonicalize(&initdb)?;
    resolved
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| missing_binary("initdb"))
}

fn find_on_path(name: &str) -> io::Result<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("`{name}` not found on PATH"),
            )
        })
}

fn find_in(candidates: &[&str], name: &str) -> io::Result<PathBuf> {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("`{name}` not found")))
}

fn running_as_root() -> io::Result<bool> {
    Ok(std::fs::metadata("/proc/self")?.uid() == 0)
}

/// The uid and gid of the `postgres` user, from `/etc/passwd`.
fn postgres_user_ids() -> io::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            if fields.next()? != "postgres" {
                return None;
            }
            let uid = fields.nth(1)?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            Some((uid, gid))
        })
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "running as root needs a `postgres` user to run the server \
                 (Debian's postgresql-15 package creates it)",
            )
        })
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
