#pragma once

// Several processes of one run on this machine, started by the app: this process is rank 0 and
// ranks 1…N−1 are `ifstudio-cli train` processes meeting it through c10d's store on the loopback,
// as torchrun's workers do (distributed.h). Also the command lines that run the same job under
// torchrun on one machine or a cluster.

#include "base/result.h"
#include "training/training.h"

#include <QString>
#include <QStringList>

#include <memory>
#include <vector>

class QProcess;

namespace ifs {

/// The `ifstudio-cli train` options that give `config` (every setting the command line has; the
/// CLI's own defaults fill the rest).
QStringList trainCommandArguments(const TrainConfig &config);

/// `args` as one line a POSIX shell reads back as the same words.
QString shellCommandLine(const QStringList &args);

/// The torchrun command that runs `config` with `processesPerNode` processes on each of
/// `nodes` machines (c10d rendezvous at NODE0_HOST:29400; Debian's torchrun needs -r 2 -t 2).
QString torchrunCommand(const TrainConfig &config, int processesPerNode, int nodes = 1);

/// Ranks 1…N−1 of a run on this machine; rank 0 is the caller's Trainer with rankZero()'s
/// environment. The processes end with the run (rank 0 stopping ends them); destroying this
/// kills any left.
class LocalRanks
{
public:
    /// Starts the other ranks of `config` as `cli train …` with the loopback rendezvous on a free
    /// port; the compute and input threads are the machine's cores shared among the processes.
    /// `config` gets the share too.
    static Result<std::unique_ptr<LocalRanks>> start(TrainConfig &config, int processes,
                                                     const QString &cli);
    ~LocalRanks();
    LocalRanks(const LocalRanks &) = delete;
    LocalRanks &operator=(const LocalRanks &) = delete;

    /// The environment of rank 0 (this process).
    const DistEnv &rankZero() const { return m_rankZero; }
    /// Waits up to `milliseconds` for every rank to exit, then kills those left.
    void finish(int milliseconds);
    /// What the ranks that failed printed last, and which ranks had to be stopped by
    /// finish(); empty when every rank ended well.
    QString failures() const;

private:
    LocalRanks() = default;

    DistEnv m_rankZero;
    std::vector<std::unique_ptr<QProcess>> m_processes;
    std::vector<int> m_killed; ///< ranks finish() had to kill
};

} // namespace ifs
