#pragma once

#include "base/result.h"

#include <QList>
#include <QString>

namespace ifs {

/// A move of flagged files out of a dataset into a quarantine folder beside it, with a manifest so
/// that it can be undone. Nothing is ever deleted.
struct QuarantineEntry
{
    QString originalPath; ///< absolute
    QString quarantinedPath; ///< absolute
};

struct QuarantineBatch
{
    QString manifestPath; ///< JSON manifest written into the batch folder
    QString batchFolder; ///< e.g. <parent>/<dataset>.quarantine/2026-11-28T19-30-00
    QList<QuarantineEntry> entries;
    /// A relabelling (relabelFiles()): the files moved to other class folders of the dataset
    /// (quarantinedPath is the new path); the batch folder holds the manifest alone.
    bool relabel = false;
};

/// The default quarantine folder for a dataset root: "<parent of root>/<root name>.quarantine".
/// Outside the dataset, so that ImageFolder never sees quarantined files as a class.
QString defaultQuarantineFolder(const QString &datasetRoot);

/// Moves `files` (absolute paths under datasetRoot) into a new batch folder under
/// `quarantineFolder`, keeping their relative layout, and writes the manifest atomically. Stops at
/// the first failure and moves back what it already moved.
Result<QuarantineBatch> quarantineFiles(const QString &datasetRoot, const QStringList &files,
                                        const QString &quarantineFolder);

/// One image to move into another class folder.
struct RelabelMove
{
    QString file; ///< absolute, inside the dataset, in a class folder
    QString targetClass; ///< the class folder's name, beside the file's own class folder
};

/// Relabels images: moves each file into the folder of its target class beside its own class
/// folder (…/<split>/<class>/x.jpg → …/<split>/<target>/x.jpg; the class folder must exist, so
/// that class_to_idx stays as it is; "x-2.jpg" when the name is taken), each move a rename (or a
/// synced copy across file systems), and records them in a manifest in a new batch folder
/// "<stamp>-relabel" under `quarantineFolder`, as quarantineFiles() does, so that undoQuarantine()
/// moves them back. Files already in their target class are left. Checks everything first; stops at
/// the first failure and moves back what it already moved.
Result<QuarantineBatch> relabelFiles(const QString &datasetRoot, const QList<RelabelMove> &moves,
                                     const QString &quarantineFolder);

/// Moves every file of a batch back to where it was. Refuses (and moves nothing) when an original
/// path is taken again.
Status undoQuarantine(const QuarantineBatch &batch);

/// Reads a batch back from its manifest (for undo after a restart).
Result<QuarantineBatch> readQuarantineManifest(const QString &manifestPath);

} // namespace ifs
