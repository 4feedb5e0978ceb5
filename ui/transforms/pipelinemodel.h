#pragma once

#include "base/result.h"
#include "transforms/transformregistry.h" // transformDescription(), isRandomTransform()
#include "transforms/transformspec.h"

#include <QAbstractListModel>
#include <QList>
#include <QString>

namespace ifs {

/// One step of a pipeline as the editor holds it: the transform and whether it runs. Disabled
/// steps stay in the list (and in the code, as commented-out lines) so they can be switched back.
struct PipelineItem
{
    TransformStep step;
    bool enabled = true;

    friend bool operator==(const PipelineItem &a, const PipelineItem &b) = default;
};
using PipelineItems = QList<PipelineItem>;

/// The steps that run, in order.
TransformPipeline enabledPipeline(const PipelineItems &items);

/// Items from a pipeline, all enabled.
PipelineItems itemsFromPipeline(const TransformPipeline &pipeline);

/// Replaces the enabled steps by `pipeline` and keeps each disabled step after as many enabled
/// steps as it followed before (used when a fix or new statistics rewrite the pipeline).
PipelineItems withEnabledPipeline(const PipelineItems &items, const TransformPipeline &pipeline);

/// The code view's text: canonical `transforms.Compose([...])` source, one step per line, with
/// disabled steps as commented-out lines (`    # transforms.RandomRotation(30),`).
QString pipelineItemsToSource(const PipelineItems &items);

/// Parses the code view's text: the pipeline as parseTransforms() reads it, plus a disabled step
/// for each commented-out line inside it that holds exactly one transform call. Other comments
/// are ignored. Errors are parseTransforms()'s (line, column and a caret).
Result<PipelineItems> pipelineItemsFromSource(const QString &source);

/// A step's arguments as written in Python, without the name: "224, scale=(0.5, 1.0)".
QString stepArgumentsText(const TransformStep &step);

/// The steps of one pipeline, for a list view: name, arguments, enabled check box, a marker for
/// findings; reorderable by drag and drop (moveRows) and by moveStep().
///
/// Edits through the model's API (insert, remove, move, toggle, set) emit itemsEdited();
/// setItems() does not, so a view that feeds setItems() from elsewhere does not loop.
class PipelineModel : public QAbstractListModel
{
    Q_OBJECT

public:
    enum Role {
        NameRole = Qt::UserRole + 1, ///< QString: the transform's class name
        ArgumentsRole, ///< QString: stepArgumentsText()
        EnabledRole, ///< bool
        RandomRole, ///< bool: the transform draws random numbers
        ProblemRole, ///< QString: why the step cannot run (empty when it can)
        SeverityRole, ///< int: worst finding (0 info, 1 warning, 2 error), -1 none
        NoteRole, ///< QString: the findings' messages
    };

    explicit PipelineModel(QObject *parent = nullptr);

    const PipelineItems &items() const { return m_items; }
    /// Replaces all steps (a model reset); does not emit itemsEdited().
    void setItems(const PipelineItems &items);
    TransformPipeline pipeline() const { return enabledPipeline(m_items); }
    const PipelineItem &item(int row) const { return m_items.at(row); }

    void insertStep(int row, const TransformStep &step, bool enabled = true);
    void removeStep(int row);
    /// Moves the step at `from` so that it ends up at index `to` (0 ≤ to < rowCount()).
    bool moveStep(int from, int to);
    void setStep(int row, const TransformStep &step);
    void setStepEnabled(int row, bool enabled);

    /// The model row of the index-th enabled step, or -1.
    int rowOfEnabledStep(int index) const;

    /// Findings shown as a marker on rows: (row, severity 0–2, message). Replaces earlier ones.
    struct RowNote
    {
        int row = -1;
        int severity = 0;
        QString message;
    };
    void setRowNotes(const QList<RowNote> &notes);
    /// Why each row cannot run (empty strings for rows that can); sized like the model.
    void setRowProblems(const QStringList &problems);

    int rowCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    bool setData(const QModelIndex &index, const QVariant &value, int role = Qt::EditRole) override;
    Qt::ItemFlags flags(const QModelIndex &index) const override;
    QHash<int, QByteArray> roleNames() const override;
    bool moveRows(const QModelIndex &sourceParent, int sourceRow, int count,
                  const QModelIndex &destinationParent, int destinationChild) override;
    bool removeRows(int row, int count, const QModelIndex &parent = {}) override;
    Qt::DropActions supportedDropActions() const override;
    QStringList mimeTypes() const override;
    QMimeData *mimeData(const QModelIndexList &indexes) const override;
    bool canDropMimeData(const QMimeData *data, Qt::DropAction action, int row, int column,
                         const QModelIndex &parent) const override;
    bool dropMimeData(const QMimeData *data, Qt::DropAction action, int row, int column,
                      const QModelIndex &parent) override;

Q_SIGNALS:
    /// The user changed the steps through the model (not through setItems()).
    void itemsEdited();

private:
    PipelineItems m_items;
    QHash<int, QList<RowNote>> m_notes;
    QStringList m_problems;
};

} // namespace ifs
