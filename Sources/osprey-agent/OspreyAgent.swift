import Agent

@main
enum OspreyAgent {
    static func main() async {
        await AgentCommand.mainWithConfigFile()
    }
}
