#pragma once

#include "checkpoint/checkpointrepair.h"
#include "checkpoint/checkpointvalue.h"

#include <QAbstractItemModel>

#include <memory>
#include <vector>

namespace ifs {

/// The nested structure of a checkpoint as a tree: one row per dict entry, list item or value,
/// with its key, Python type, shape, dtype, saved device and size in bytes. Children are built
/// when a view first asks for them, so a checkpoint with thousands of keys opens at once.
class CheckpointTreeModel : public QAbstractItemModel
{
    Q_OBJECT

public:
    enum Column {
        KeyColumn,
        TypeColumn,
        ShapeColumn,
        DTypeColumn,
        DeviceColumn,
        SizeColumn,
        ColumnCount
    };
    enum Role {
        /// The str keys from the root to the row (a ckpt::KeyPath); empty when a key on the way
        /// is not a str (a list index, an optimizer's int key).
        KeyPathRole = Qt::UserRole + 1,
        /// The row's keys joined with "." (`state_dict.layer1.0.conv1.weight`): what the filter
        /// matches.
        FullKeyRole,
        /// Whether the row's value is a tensor (bool).
        IsTensorRole,
        /// Whether the row's value is a dict (bool).
        IsDictRole,
        /// The size in bytes as a number (qint64), for sorting.
        BytesRole,
    };

    explicit CheckpointTreeModel(QObject *parent = nullptr);
    ~CheckpointTreeModel() override;

    /// Shows `root` (what torch.load returns); `rootLabel` names it in the single top row.
    void setRoot(const ckpt::Value &root, const QString &rootLabel = QStringLiteral("root"));
    void clear();
    ckpt::Value root() const;

    /// The value a row shows (None for an invalid index).
    ckpt::Value valueAt(const QModelIndex &index) const;
    /// The index of the value at `path` (str keys from the root); invalid when absent.
    QModelIndex indexForPath(const ckpt::KeyPath &path);

    /// "[64, 3, 7, 7]"; "[]" for a 0-dim tensor.
    static QString shapeText(const QList<qint64> &shape);
    /// "1.2 MiB", "512 B".
    static QString bytesText(qint64 bytes);

    QModelIndex index(int row, int column, const QModelIndex &parent = {}) const override;
    QModelIndex parent(const QModelIndex &child) const override;
    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    bool hasChildren(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation,
                        int role = Qt::DisplayRole) const override;

private:
    struct Node;
    Node *nodeOf(const QModelIndex &index) const;
    static void ensureChildren(Node *node);

    std::unique_ptr<Node> m_top; // invisible root; its one child is the checkpoint's root
};

} // namespace ifs
