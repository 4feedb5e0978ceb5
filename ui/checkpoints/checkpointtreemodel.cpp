#include "checkpoints/checkpointtreemodel.h"

#include "checkpoint/checkpointsummary.h"

#include <QLocale>

#include <optional>

namespace ifs {

using ckpt::Value;

struct CheckpointTreeModel::Node
{
    QString key;
    Value value;
    Node *parent = nullptr;
    int row = 0;
    bool pathValid = true;
    ckpt::KeyPath path;
    QString fullKey;
    bool childrenBuilt = false;
    std::vector<std::unique_ptr<Node>> children;
    // Aggregates over the tensors below, computed on first use.
    bool summarised = false;
    qint64 bytes = 0; ///< of the distinct storages below
    qint64 viewBytes = 0; ///< numel × element size of the tensors below
    QStringList dtypes;
    QStringList devices;
};

namespace {

using ckpt::keyText;
using ckpt::scalarText;

QString sizeToolTip(qint64 bytes, qint64 viewBytes)
{
    const QLocale locale;
    if (viewBytes == bytes)
        return CheckpointTreeModel::tr("%1 bytes").arg(locale.toString(bytes));
    return CheckpointTreeModel::tr("%1 bytes of storage; the tensors' views hold %2 bytes "
                                   "(shared or partly used storages)")
        .arg(locale.toString(bytes), locale.toString(viewBytes));
}

QString listText(const QStringList &items)
{
    if (items.size() <= 2)
        return items.join(QStringLiteral(", "));
    return items.mid(0, 2).join(QStringLiteral(", ")) + QStringLiteral(", …");
}

} // namespace

CheckpointTreeModel::CheckpointTreeModel(QObject *parent)
    : QAbstractItemModel(parent)
    , m_top(std::make_unique<Node>())
{
    m_top->childrenBuilt = true;
}

CheckpointTreeModel::~CheckpointTreeModel() = default;

void CheckpointTreeModel::setRoot(const Value &root, const QString &rootLabel)
{
    beginResetModel();
    m_top = std::make_unique<Node>();
    m_top->childrenBuilt = true;
    auto node = std::make_unique<Node>();
    node->key = rootLabel;
    node->value = root;
    node->parent = m_top.get();
    m_top->value = Value::list({root});
    m_top->children.push_back(std::move(node));
    endResetModel();
}

void CheckpointTreeModel::clear()
{
    beginResetModel();
    m_top = std::make_unique<Node>();
    m_top->childrenBuilt = true;
    endResetModel();
}

Value CheckpointTreeModel::root() const
{
    return m_top->children.empty() ? Value() : m_top->children.front()->value;
}

CheckpointTreeModel::Node *CheckpointTreeModel::nodeOf(const QModelIndex &index) const
{
    return index.isValid() ? static_cast<Node *>(index.internalPointer()) : m_top.get();
}

void CheckpointTreeModel::ensureChildren(Node *node)
{
    if (node->childrenBuilt)
        return;
    node->childrenBuilt = true;
    auto add = [node](const QString &key, const Value &value, std::optional<QString> pathKey) {
        auto child = std::make_unique<Node>();
        child->key = key;
        child->value = value;
        child->parent = node;
        child->row = int(node->children.size());
        child->pathValid = node->pathValid && pathKey.has_value();
        if (child->pathValid) {
            child->path = node->path;
            child->path.append(*pathKey);
        }
        // The root's own label is not part of the dotted key.
        child->fullKey = node->parent && node->parent->parent ? node->fullKey + u'.' + key : key;
        node->children.push_back(std::move(child));
    };
    const Value &value = node->value;
    if (value.isDict()) {
        for (const Value::Entry &entry : value.entries()) {
            add(keyText(entry.first), entry.second,
                entry.first.isString() ? std::optional<QString>(entry.first.toString())
                                       : std::nullopt);
        }
    } else if (value.isList() || value.isTuple()) {
        const QList<Value> &items = value.items();
        for (qsizetype i = 0; i < items.size(); ++i)
            add(QStringLiteral("[%1]").arg(i), items[i], std::nullopt);
    } else if (value.isObject()) {
        if (!value.objectArgs().isNone())
            add(QStringLiteral("(args)"), value.objectArgs(), std::nullopt);
        if (!value.state().isNone())
            add(QStringLiteral("(state)"), value.state(), std::nullopt);
    }
}

QModelIndex CheckpointTreeModel::index(int row, int column, const QModelIndex &parent) const
{
    if (row < 0 || column < 0 || column >= ColumnCount)
        return {};
    if (parent.isValid() && parent.column() != 0)
        return {};
    Node *node = nodeOf(parent);
    ensureChildren(node);
    if (row >= int(node->children.size()))
        return {};
    return createIndex(row, column, node->children[size_t(row)].get());
}

QModelIndex CheckpointTreeModel::parent(const QModelIndex &child) const
{
    if (!child.isValid())
        return {};
    Node *node = nodeOf(child);
    Node *parent = node->parent;
    if (!parent || parent == m_top.get())
        return {};
    return createIndex(parent->row, 0, parent);
}

int CheckpointTreeModel::rowCount(const QModelIndex &parent) const
{
    if (parent.isValid() && parent.column() != 0)
        return 0;
    Node *node = nodeOf(parent);
    ensureChildren(node);
    return int(node->children.size());
}

int CheckpointTreeModel::columnCount(const QModelIndex &) const
{
    return ColumnCount;
}

bool CheckpointTreeModel::hasChildren(const QModelIndex &parent) const
{
    if (parent.isValid() && parent.column() != 0)
        return false;
    const Node *node = nodeOf(parent);
    if (node == m_top.get())
        return !m_top->children.empty();
    const Value &value = node->value;
    if (value.isObject())
        return !value.objectArgs().isNone() || !value.state().isNone();
    return (value.isDict() || value.isList() || value.isTuple()) && value.size() > 0;
}

QVariant CheckpointTreeModel::data(const QModelIndex &index, int role) const
{
    if (!index.isValid())
        return {};
    Node *node = nodeOf(index);
    const Value &value = node->value;
    const bool tensor = value.isTensor();
    if (!node->summarised
        && (role == Qt::DisplayRole || role == BytesRole || role == Qt::ToolTipRole)) {
        node->summarised = true;
        const ckpt::TensorTotals totals = ckpt::tensorTotals(value);
        node->bytes = totals.bytes;
        node->viewBytes = totals.viewBytes;
        node->dtypes = totals.dtypes;
        node->devices = totals.devices;
    }
    switch (role) {
    case Qt::DisplayRole:
        switch (index.column()) {
        case KeyColumn:
            return node->key;
        case TypeColumn:
            return value.typeName();
        case ShapeColumn:
            if (tensor)
                return shapeText(value.toTensor().shape);
            if (value.isDict() || value.isList() || value.isTuple())
                return value.size() == 1 ? tr("1 item") : tr("%1 items").arg(value.size());
            return scalarText(value);
        case DTypeColumn:
            return listText(node->dtypes);
        case DeviceColumn:
            return listText(node->devices);
        case SizeColumn:
            return node->dtypes.isEmpty() ? QString() : bytesText(node->bytes);
        }
        return {};
    case Qt::ToolTipRole:
        if (index.column() == KeyColumn)
            return node->fullKey;
        if (index.column() == DTypeColumn || index.column() == DeviceColumn) {
            return (index.column() == DTypeColumn ? node->dtypes : node->devices)
                .join(QStringLiteral(", "));
        }
        if (index.column() == SizeColumn && !node->dtypes.isEmpty())
            return sizeToolTip(node->bytes, node->viewBytes);
        return {};
    case Qt::TextAlignmentRole:
        if (index.column() == SizeColumn)
            return QVariant::fromValue(Qt::AlignRight | Qt::AlignVCenter);
        return {};
    case KeyPathRole:
        return node->pathValid ? QVariant(node->path) : QVariant();
    case FullKeyRole:
        return node->fullKey;
    case IsTensorRole:
        return tensor;
    case IsDictRole:
        return value.isDict();
    case BytesRole:
        return node->bytes;
    default:
        return {};
    }
}

QVariant CheckpointTreeModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case KeyColumn:
        return tr("Key");
    case TypeColumn:
        return tr("Type");
    case ShapeColumn:
        return tr("Shape / Value");
    case DTypeColumn:
        return tr("DType");
    case DeviceColumn:
        return tr("Saved Device");
    case SizeColumn:
        return tr("Size");
    }
    return {};
}

Value CheckpointTreeModel::valueAt(const QModelIndex &index) const
{
    return index.isValid() ? nodeOf(index)->value : Value();
}

QModelIndex CheckpointTreeModel::indexForPath(const ckpt::KeyPath &path)
{
    QModelIndex current = index(0, 0);
    for (const QString &key : path) {
        if (!current.isValid())
            return {};
        Node *node = nodeOf(current);
        ensureChildren(node);
        QModelIndex next;
        for (const auto &child : node->children) {
            if (child->pathValid && !child->path.isEmpty() && child->path.constLast() == key) {
                next = createIndex(child->row, 0, child.get());
                break;
            }
        }
        current = next;
    }
    return current;
}

QString CheckpointTreeModel::shapeText(const QList<qint64> &shape)
{
    return ckpt::shapeText(shape);
}

QString CheckpointTreeModel::bytesText(qint64 bytes)
{
    return QLocale().formattedDataSize(bytes, 1, QLocale::DataSizeTraditionalFormat);
}

} // namespace ifs
