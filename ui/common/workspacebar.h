#pragma once

#include <QWidget>

class QButtonGroup;
class QVBoxLayout;

namespace ifs {

/// The vertical mode bar on the left of the main window (like Qt Creator's): one checkable button
/// per workspace. Workspaces are added as the app grows: Datasets, Transforms, Checkpoints,
/// Training.
class WorkspaceBar : public QWidget
{
    Q_OBJECT

public:
    explicit WorkspaceBar(QWidget *parent = nullptr);

    /// Adds a workspace button and returns its index.
    int addWorkspace(const QIcon &icon, const QString &title, const QString &shortcutHint);
    void setCurrentIndex(int index);
    int currentIndex() const;
    int count() const;

Q_SIGNALS:
    void currentChanged(int index);

private:
    QButtonGroup *m_group;
    QVBoxLayout *m_layout;
};

} // namespace ifs
