#pragma once

#include <QListView>

namespace ifs {

/// The step list: reorder by drag and drop within the list (the model's moveRows(), so nothing
/// is removed and re-inserted), Delete removes, Ctrl+Up/Down moves, Space toggles.
class PipelineListView : public QListView
{
    Q_OBJECT

public:
    explicit PipelineListView(QWidget *parent = nullptr);

Q_SIGNALS:
    void removeRequested();
    void moveRequested(int delta);
    void addRequested();

protected:
    void keyPressEvent(QKeyEvent *event) override;
    void startDrag(Qt::DropActions supportedActions) override;
    void dropEvent(QDropEvent *event) override;
};

} // namespace ifs
